package load

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/verify"
)

// Report is what one worker measured in one phase, in a form that travels
// as JSON and merges exactly (see Aggregate).
type Report struct {
	Start     time.Time                     `json:"start"`
	End       time.Time                     `json:"end"`
	Counts    map[string]uint64             `json:"counts"`
	Errors    map[string]ErrorCount         `json:"errors,omitempty"`
	Latencies map[string]metrics.Encoded    `json:"latencies,omitempty"` // the non-empty ones
	Series    map[string]metrics.SeriesData `json:"series,omitempty"`
	Fanout    []FanoutPoint                 `json:"fanout,omitempty"`
	// Verify is the worker's verifier summary, in final reports only:
	// it covers the whole run, not a phase.
	Verify *verify.Summary `json:"verify,omitempty"`
}

// FanoutPoint is one message's fan-out as one worker saw it.
type FanoutPoint struct {
	Room      string `json:"room"`
	Seq       uint64 `json:"seq"`
	SentAt    int64  `json:"sent_at"` // unix ns, from the body
	Last      int64  `json:"last"`    // unix ns of the last delivery
	Receivers uint64 `json:"receivers"`
}

// Aggregate merges Reports: of several workers, of several phases, or both.
// The zero value is not usable; call NewAggregate.
type Aggregate struct {
	Start, End time.Time
	Counts     map[string]uint64
	Errors     map[string]ErrorCount
	latency    map[string]*metrics.Recorder
	series     map[string]*metrics.Series
	fanout     map[fanoutKey]*FanoutPoint
	Verify     verify.Summary
}

type fanoutKey struct {
	room string
	seq  uint64
}

// NewAggregate returns an empty Aggregate.
func NewAggregate() *Aggregate {
	a := &Aggregate{
		Counts:  map[string]uint64{},
		Errors:  map[string]ErrorCount{},
		latency: map[string]*metrics.Recorder{},
		series:  map[string]*metrics.Series{},
		fanout:  map[fanoutKey]*FanoutPoint{},
	}
	for _, n := range latencyNames {
		a.latency[n] = metrics.NewRecorder()
	}
	for _, n := range seriesNames {
		a.series[n] = metrics.NewSeries(time.Second)
	}
	return a
}

// Add merges r into a.
func (a *Aggregate) Add(r Report) error {
	if a.Start.IsZero() || r.Start.Before(a.Start) {
		a.Start = r.Start
	}
	if r.End.After(a.End) {
		a.End = r.End
	}
	for k, n := range r.Counts {
		a.Counts[k] += n
	}
	for k, e := range r.Errors {
		if old, ok := a.Errors[k]; ok {
			e.Example = old.Example
			e.Count += old.Count
		}
		a.Errors[k] = e
	}
	for k, enc := range r.Latencies {
		rec := a.latency[k]
		if rec == nil {
			return fmt.Errorf("merge report: unknown latency %q", k)
		}
		if err := rec.Merge(enc); err != nil {
			return fmt.Errorf("merge report: %s: %w", k, err)
		}
	}
	for k, d := range r.Series {
		s := a.series[k]
		if s == nil {
			return fmt.Errorf("merge report: unknown series %q", k)
		}
		if err := s.Merge(d); err != nil {
			return fmt.Errorf("merge report: %s: %w", k, err)
		}
	}
	for _, p := range r.Fanout {
		k := fanoutKey{p.Room, p.Seq}
		if q := a.fanout[k]; q != nil {
			q.Last = max(q.Last, p.Last)
			q.Receivers += p.Receivers
		} else {
			a.fanout[k] = &p
		}
	}
	if r.Verify != nil {
		return a.Verify.Merge(*r.Verify)
	}
	return nil
}

// Count returns a counter's total.
func (a *Aggregate) Count(c Counter) uint64 { return a.Counts[c.String()] }

// ErrorTotal adds up every error.
func (a *Aggregate) ErrorTotal() uint64 {
	var n uint64
	for _, e := range a.Errors {
		n += e.Count
	}
	return n
}

// Latency summarises one of the latency histograms (SendAck, …).
func (a *Aggregate) Latency(name string) metrics.Snapshot { return a.latency[name].Snapshot() }

// Series returns one of the series (SeriesSent, …).
func (a *Aggregate) Series(name string) *metrics.Series { return a.series[name] }

// Fanout returns each message's merged fan-out, by room and seq.
func (a *Aggregate) Fanout() []FanoutPoint {
	out := make([]FanoutPoint, 0, len(a.fanout))
	for _, p := range a.fanout {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(x, y FanoutPoint) int {
		return cmp.Or(strings.Compare(x.Room, y.Room), cmp.Compare(x.Seq, y.Seq))
	})
	return out
}

// ErrorClasses returns the error classes, most frequent first.
func (a *Aggregate) ErrorClasses() []string {
	keys := slices.Collect(maps.Keys(a.Errors))
	slices.SortFunc(keys, func(x, y string) int {
		return cmp.Or(cmp.Compare(a.Errors[y].Count, a.Errors[x].Count), strings.Compare(x, y))
	})
	return keys
}
