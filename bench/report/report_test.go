package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/sample"
	"github.com/parley-chat/parley/bench/verify"
)

var start = time.Date(2026, 5, 1, 13, 4, 5, 0, time.UTC)

// measure builds a Run the way a scenario does: deliveries at rate per
// second for secs seconds with latencies around typical, through the
// metrics package.
func measure(secs, rate int, typical time.Duration) Run {
	rng := rand.New(rand.NewPCG(1, 2))
	ack, deliver := metrics.NewRecorder(), metrics.NewRecorder()
	sentS, ackS, delS := metrics.NewSeries(time.Second), metrics.NewSeries(time.Second), metrics.NewSeries(time.Second)
	var n uint64
	for sec := range secs {
		at := start.Add(time.Duration(sec) * time.Second)
		for range rate {
			d := time.Duration(rng.ExpFloat64() * float64(typical))
			sentS.Add(at, 1)
			ack.Record(d / 2)
			ackS.Record(at, d/2)
			deliver.Record(d)
			delS.Record(at, d)
			n++
		}
	}
	run := Run{
		Totals:  Totals{Connections: 100, Sent: n, Acked: n, Delivered: n},
		Latency: Latency{SendAck: ack.Snapshot(), SendDeliver: deliver.Snapshot()},
		Timeline: Timeline{Sent: sentS.Rates(), Delivered: delS.Rates(),
			SendAck: ackS.Latencies(), SendDeliver: delS.Latencies()},
	}
	run.Throughput = NewThroughput(run.Totals, time.Duration(secs)*time.Second, run.Timeline)
	return run
}

func testResult() *Result {
	r := New("megaroom", map[string]any{"receivers": 50000, "rate": "2000/s", "proto": "parley.v1.proto"})
	r.Start, r.End = start, start.Add(30*time.Second)
	r.Run = measure(30, 2000, 4*time.Millisecond)
	r.Run.Verify = &verify.Totals{Rooms: 1, Receivers: 100, Sent: 60000, Acked: 60000, Delivered: 6000000}
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	proc := sample.ProcSeries{Target: sample.Target{Name: "parley dev", PID: 4242}, Points: []sample.ProcPoint{
		{Time: at(0), CPUSeconds: 1, RSSBytes: 100 << 20, Threads: 9},
		{Time: at(30), CPUSeconds: 31, CPUPercent: 100, RSSBytes: 300 << 20, Threads: 12},
	}}
	r.Run.Server = &sample.Result{Processes: []sample.ProcSeries{proc}, Summary: sample.Summary{
		Processes: []sample.ProcSummary{{Target: proc.Target, CPUSeconds: 30, MeanCPUPercent: 100, PeakCPUPercent: 100, PeakRSSBytes: 300 << 20, PeakThreads: 12}},
		Total:     sample.ProcSummary{Target: sample.Target{Name: "total"}, CPUSeconds: 30, MeanCPUPercent: 100, PeakCPUPercent: 100, PeakRSSBytes: 300 << 20, PeakThreads: 12},
	}}
	r.Baselines = []Baseline{{Name: "nats-direct", Description: "core NATS pub/sub, no gateway", Run: measure(30, 1000, time.Millisecond)}}
	return r
}

func TestWriteAllFiles(t *testing.T) {
	r := testResult()
	dir := Dir(t.TempDir(), r.Scenario, r.Start)
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"result.json", "summary.md", "chart.svg"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}

	// result.json parses back to the same result.
	raw, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := json.MarshalIndent(back, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(again, '\n'), raw) {
		t.Fatal("result.json does not survive Load and re-encoding unchanged")
	}
	if back.Version != Version || back.Scenario != "megaroom" || back.Run.Latency.SendDeliver != r.Run.Latency.SendDeliver ||
		back.Run.Verify.Delivered != 6000000 || len(back.Run.Timeline.SendDeliver) != 30 || back.Baselines[0].Name != "nats-direct" {
		t.Fatalf("loaded result lost data: %+v", back)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"version", "scenario", "params", "command", "machine", "start", "end", "run", "baselines"} {
		if _, ok := generic[key]; !ok {
			t.Errorf("result.json has no %q", key)
		}
	}
}

func TestDir(t *testing.T) {
	got := Dir(DefaultRoot, "dm", time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)))
	if want := filepath.Join("bench", "results", "dm-20260102-020405"); got != want {
		t.Fatalf("Dir = %q, want %q (UTC)", got, want)
	}
}

func TestLoadRejectsOtherVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "result.json")
	if err := os.WriteFile(path, []byte(`{"version": 99, "scenario": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil {
		t.Fatal("loaded a result of version 99")
	}
	r := testResult()
	r.Version = 0
	if err := Write(t.TempDir(), r); err == nil {
		t.Fatal("wrote a result without a version")
	}
}

// polyline is a parsed <polyline>.
type polyline struct {
	title  string
	points [][2]float64
}

// parseSVG checks that chart is well-formed XML and returns its root's
// attributes, its polylines and all its text.
func parseSVG(t *testing.T, chart string) (root map[string]string, lines []polyline, texts []string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(chart))
	var cur *polyline
	var inTitle bool
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart.svg is not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			attrs := map[string]string{}
			for _, a := range el.Attr {
				attrs[a.Name.Local] = a.Value
			}
			switch el.Name.Local {
			case "svg":
				root = attrs
			case "polyline":
				cur = &polyline{}
				for _, pt := range strings.Fields(attrs["points"]) {
					xs, ys, _ := strings.Cut(pt, ",")
					x, err1 := strconv.ParseFloat(xs, 64)
					y, err2 := strconv.ParseFloat(ys, 64)
					if err1 != nil || err2 != nil {
						t.Fatalf("bad point %q", pt)
					}
					cur.points = append(cur.points, [2]float64{x, y})
				}
			case "title":
				inTitle = true
			}
		case xml.CharData:
			switch {
			case inTitle && cur != nil:
				cur.title += string(el)
			default:
				texts = append(texts, string(el))
			}
		case xml.EndElement:
			switch el.Name.Local {
			case "polyline":
				lines = append(lines, *cur)
				cur = nil
			case "title":
				inTitle = false
			}
		}
	}
	return root, lines, texts
}

func TestChart(t *testing.T) {
	r := testResult()
	root, lines, texts := parseSVG(t, chart(r))
	if root["width"] != "900" || root["height"] != "500" || root["xmlns"] != "http://www.w3.org/2000/svg" {
		t.Fatalf("svg root %v", root)
	}
	byTitle := map[string]polyline{}
	for _, l := range lines {
		byTitle[l.title] = l
		for _, p := range l.points {
			if p[0] < plotLeft-0.1 || p[0] > plotRight+0.1 || p[1] < latencyPanel.top-0.1 || p[1] > ratePanel.bottom+0.1 {
				t.Fatalf("%s: point %v outside the plot", l.title, p)
			}
		}
	}
	tl := r.Run.Timeline
	for title, n := range map[string]int{
		"send→deliver p50": len(tl.SendDeliver), "send→deliver p99": len(tl.SendDeliver), "send→deliver p99.9": len(tl.SendDeliver),
		"send→ack p50": len(tl.SendAck), "send→ack p99": len(tl.SendAck), "send→ack p99.9": len(tl.SendAck),
		"sent/s": len(tl.Sent), "delivered/s": len(tl.Delivered),
	} {
		if got := len(byTitle[title].points); got != n || n == 0 {
			t.Errorf("%s: %d points, want %d", title, got, n)
		}
	}
	if len(lines) != 8 {
		t.Errorf("%d lines, want 8", len(lines))
	}
	// Higher percentiles plot higher (smaller y) at every time, and the
	// lines stay in the latency panel.
	p50, p99, p999 := byTitle["send→deliver p50"], byTitle["send→deliver p99"], byTitle["send→deliver p99.9"]
	for i := range p50.points {
		if !(p999.points[i][1] <= p99.points[i][1] && p99.points[i][1] < p50.points[i][1]) || p50.points[i][1] > latencyPanel.bottom {
			t.Fatalf("at %d: p50 y %.1f, p99 y %.1f, p99.9 y %.1f", i, p50.points[i][1], p99.points[i][1], p999.points[i][1])
		}
		if p50.points[i][0] != p99.points[i][0] {
			t.Fatal("percentiles of one interval plot at different times")
		}
	}
	// Time runs left to right over the run.
	del := byTitle["delivered/s"].points
	if del[0][0] != plotLeft || !slices.IsSortedFunc(del, func(a, b [2]float64) int { return int(a[0] - b[0]) }) {
		t.Fatalf("delivered/s starts at x %.1f or is not in time order", del[0][0])
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"megaroom", "latency (log scale)", "messages/s", "seconds since start", "p50", "p99.9", "send→ack", "sent/s", "1ms", "10ms"} {
		if !strings.Contains(all, want) {
			t.Errorf("chart has no text %q", want)
		}
	}
}

func TestChartWithoutData(t *testing.T) {
	r := New("connect", nil)
	r.End = r.Start.Add(time.Second)
	_, lines, texts := parseSVG(t, chart(r))
	if len(lines) != 0 || strings.Count(strings.Join(texts, "\n"), "no data") != 2 {
		t.Fatalf("empty run: %d lines, texts %q", len(lines), texts)
	}
}

func TestSummary(t *testing.T) {
	r := testResult()
	md := summary(r)
	for _, want := range []string{
		"# Bench: megaroom",
		"| receivers | 50000 |",
		"| Delivered/s | 2,000 | 1,000 | ×2.00 |", // 60,000 in 30 s against 30,000
		"| Connections | 100 | 100 | ×1.00 |",
		"send→deliver (nats-direct)",
		"**Clean**",
		"| parley dev | 4242 | 30.0 | 100% | 100% | 300.0 MiB | 12 |",
		"**nats-direct**: core NATS pub/sub, no gateway",
		"![latency and throughput over time](chart.svg)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary.md lacks %q", want)
		}
	}
	if strings.Contains(md, "| Errors |") {
		t.Error("summary.md shows a row that is zero everywhere")
	}
	if !strings.Contains(md, "| Server peak RSS | 300.0 MiB | – | – |") {
		t.Error("summary.md does not mark the baseline's unsampled server as unmeasured")
	}
	// Every table row has as many cells as its header.
	cells := 0
	for _, l := range strings.Split(md, "\n") {
		if !strings.HasPrefix(l, "|") {
			cells = 0
			continue
		}
		n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|")
		if cells == 0 {
			cells = n
		} else if n != cells {
			t.Errorf("row %q has %d separators, its table %d", l, n, cells)
		}
	}

	r.Run.Verify.Lost, r.Run.Verify.StoredTwice = 3, 2
	if md := summary(r); !strings.Contains(md, "**Anomalies found.**") || !strings.Contains(md, "| 1 | 100 | 60,000 | 60,000 | 6,000,000 | 3 | 0 | 0 | 2 | 0 | 0 |") {
		t.Errorf("summary.md does not report the lost messages and those stored twice:\n%s", md)
	}
}

func TestDescribeMachine(t *testing.T) {
	m := DescribeMachine()
	if m.Cores != runtime.NumCPU() || m.GoVersion != runtime.Version() || m.OS != runtime.GOOS {
		t.Fatalf("machine %+v", m)
	}
	if runtime.GOOS == "linux" && (m.MemoryBytes <= 0 || m.Kernel == "" || m.CPUModel == "") {
		t.Fatalf("machine %+v lacks what /proc tells", m)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{dur(850 * time.Microsecond), "850µs"},
		{dur(2345 * time.Microsecond), "2.35ms"},
		{dur(123400 * time.Microsecond), "123.4ms"},
		{dur(2500 * time.Millisecond), "2.50s"},
		{num(1234567), "1,234,567"},
		{num(-1234), "-1,234"},
		{num(12.25), "12.2"},
		{num(100), "100"},
		{size(512), "512 B"},
		{size(3 << 30), "3.0 GiB"},
		{short(1500), "1.5k"},
		{short(2e6), "2M"},
		{ratio(3, 2), "×1.50"},
		{ratio(3, 0), "–"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
