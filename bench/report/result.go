// Package report writes a bench run's results to a directory
// bench/results/<scenario>-<YYYYMMDD-HHMMSS>/: result.json (the Result
// struct below, versioned, for tools and later comparison), summary.md
// (Markdown tables for people, with ratios against any baselines) and
// chart.svg (latency percentiles and throughput over time). Progress prints
// a live status line while a run goes on.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/sample"
	"github.com/parley-chat/parley/bench/verify"
)

// Version is the version of the result.json format. Bump it when a field
// changes meaning or goes away; adding fields keeps it.
const Version = 1

// DefaultRoot is where result directories go, relative to the repository.
const DefaultRoot = "bench/results"

// Result is one bench run: what ran, where, and what it measured.
type Result struct {
	Version  int            `json:"version"`
	Scenario string         `json:"scenario"`
	Params   map[string]any `json:"params,omitempty"` // the scenario's settings
	Command  []string       `json:"command"`
	Machine  Machine        `json:"machine"`
	Start    time.Time      `json:"start"`
	End      time.Time      `json:"end"`
	Run      Run            `json:"run"`
	// Servers are the server processes sampled, with their command lines.
	Servers []ServerProcess `json:"servers,omitempty"`
	// Baselines are other systems (or earlier runs, see Load) measured the
	// same way, for comparison.
	Baselines []Baseline `json:"baselines,omitempty"`
}

// Run is what one system measured under a scenario.
type Run struct {
	Totals     Totals         `json:"totals"`
	Throughput Throughput     `json:"throughput"`
	Latency    Latency        `json:"latency"`
	Verify     *verify.Totals `json:"verify,omitempty"` // nil when deliveries were not verified
	Server     *sample.Result `json:"server,omitempty"` // nil when the server was not sampled
	Timeline   Timeline       `json:"timeline"`
}

// Baseline is a run of something to compare with.
type Baseline struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Run         Run    `json:"run"`
}

// Totals are counts over the whole run.
type Totals struct {
	Connections uint64 `json:"connections"` // established
	Sent        uint64 `json:"sent"`
	Acked       uint64 `json:"acked"`
	Delivered   uint64 `json:"delivered"`
	Errors      uint64 `json:"errors"` // failed connects, error frames, timeouts
}

// Throughput is rates over the measured window.
type Throughput struct {
	Seconds             float64 `json:"seconds"` // length of the window
	SentPerSec          float64 `json:"sent_per_sec"`
	AckedPerSec         float64 `json:"acked_per_sec"`
	DeliveredPerSec     float64 `json:"delivered_per_sec"`
	PeakSentPerSec      float64 `json:"peak_sent_per_sec"` // busiest second of the timeline
	PeakDeliveredPerSec float64 `json:"peak_delivered_per_sec"`
}

// NewThroughput derives rates from totals over a window, and peaks from
// the timeline.
func NewThroughput(t Totals, window time.Duration, tl Timeline) Throughput {
	tp := Throughput{Seconds: window.Seconds()}
	if tp.Seconds > 0 {
		tp.SentPerSec = float64(t.Sent) / tp.Seconds
		tp.AckedPerSec = float64(t.Acked) / tp.Seconds
		tp.DeliveredPerSec = float64(t.Delivered) / tp.Seconds
	}
	tp.PeakSentPerSec = peak(tl.Sent)
	tp.PeakDeliveredPerSec = peak(tl.Delivered)
	return tp
}

func peak(rates []metrics.Rate) float64 {
	var p int64
	for _, r := range rates {
		p = max(p, r.Count)
	}
	return float64(p)
}

// Latency is the run's latency distributions.
type Latency struct {
	SendAck     metrics.Snapshot `json:"send_ack"`     // send until the sender's ack
	SendDeliver metrics.Snapshot `json:"send_deliver"` // send until each receiver's delivery
}

// Timeline is the run second by second, for charts: rates per second and
// latency per interval (metrics.Series' Rates and Latencies).
type Timeline struct {
	Sent        []metrics.Rate             `json:"sent,omitempty"`
	Delivered   []metrics.Rate             `json:"delivered,omitempty"`
	SendAck     []metrics.IntervalSnapshot `json:"send_ack,omitempty"`
	SendDeliver []metrics.IntervalSnapshot `json:"send_deliver,omitempty"`
}

// New starts a Result for a run of scenario beginning now, filling in the
// command line and the machine.
func New(scenario string, params map[string]any) *Result {
	return &Result{
		Version:  Version,
		Scenario: scenario,
		Params:   params,
		Command:  os.Args,
		Machine:  DescribeMachine(),
		Start:    time.Now(),
	}
}

// Dir is the directory for a run's files: root/<scenario>-<start in UTC as
// YYYYMMDD-HHMMSS>.
func Dir(root, scenario string, start time.Time) string {
	return filepath.Join(root, scenario+"-"+start.UTC().Format("20060102-150405"))
}

// Write creates dir and writes result.json, summary.md and chart.svg.
func Write(dir string, r *Result) error {
	if r.Version != Version {
		return fmt.Errorf("report: result version %d, want %d", r.Version, Version)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{"result.json", append(js, '\n')},
		{"summary.md", []byte(summary(r))},
		{"chart.svg", []byte(chart(r))},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Load reads a result.json, for example an earlier run to use as a baseline.
func Load(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	if r.Version != Version {
		return nil, fmt.Errorf("report: %s has version %d, want %d", path, r.Version, Version)
	}
	return &r, nil
}
