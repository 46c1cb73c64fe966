package sample

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's CPU time as getrusage tells it, independently
// of /proc.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// burn spins until this process has used d more CPU time, however busy
// the machine.
func burn(t *testing.T, d time.Duration) {
	t.Helper()
	x, end := 1.0, cpuTime(t)+d
	for cpuTime(t) < end {
		for range 10000 {
			x = math.Sqrt(x + 1)
		}
	}
	_ = x
}

func TestReadProcSelf(t *testing.T) {
	ru0 := cpuTime(t)
	before, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	burn(t, 200*time.Millisecond)
	after, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ru := (cpuTime(t) - ru0).Seconds()
	// /proc counts in clock ticks (10 ms), getrusage in microseconds.
	if d := after.CPUSeconds - before.CPUSeconds; d < ru-0.05 || d > ru+0.05 {
		t.Errorf("/proc says %.3f CPU seconds went by, getrusage %.3f", d, ru)
	}
	if after.RSSBytes < 1<<20 || after.RSSBytes > 8<<30 {
		t.Errorf("RSS %d bytes, implausible for a Go test binary", after.RSSBytes)
	}
	if after.Threads < 2 {
		t.Errorf("%d threads; the Go runtime runs several", after.Threads)
	}
}

// startSleep starts a child that sleeps until killed.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestReadProcChild(t *testing.T) {
	cmd := startSleep(t)
	p, err := ReadProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if p.Threads != 1 || p.RSSBytes <= 0 || p.RSSBytes > 64<<20 || p.CPUSeconds > 1 {
		t.Fatalf("sleep reads as %+v: want 1 thread, a small RSS, next to no CPU", p)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := ReadProc(cmd.Process.Pid); err == nil {
		t.Fatal("reading a reaped process succeeded")
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses; utime 250, stime 50 ticks.
	line := "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 7 0 100 1000 30 0\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 300 / float64(clockTicks()); got != want {
		t.Fatalf("cpu %v s, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("a truncated stat line parsed")
	}
}

const exposition = `# HELP parley_gateway_connections Open WebSocket connections.
# TYPE parley_gateway_connections gauge
parley_gateway_connections{gateway="g1",proto="json"} 120
parley_gateway_connections{gateway="g1",proto="proto",} 3000 1700000000000
# a free-form comment

go_memstats_heap_inuse_bytes 1.2345e+07
weird_labels{path="C:\\dir",quote="say \"hi\"",nl="a\nb", spaced = "x"} -1
empty_braces{} +Inf
not_a_number NaN
`

func TestParsePromText(t *testing.T) {
	got, err := ParsePromText(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	want := []PromSample{
		{"parley_gateway_connections", map[string]string{"gateway": "g1", "proto": "json"}, 120},
		{"parley_gateway_connections", map[string]string{"gateway": "g1", "proto": "proto"}, 3000},
		{"go_memstats_heap_inuse_bytes", nil, 12345000},
		{"weird_labels", map[string]string{"path": `C:\dir`, "quote": `say "hi"`, "nl": "a\nb", "spaced": "x"}, -1},
		{"empty_braces", nil, math.Inf(1)},
	}
	if len(got) != len(want)+1 || !math.IsNaN(got[len(want)].Value) || got[len(want)].Name != "not_a_number" {
		t.Fatalf("parsed %+v", got)
	}
	if !reflect.DeepEqual(got[:len(want)], want) {
		t.Fatalf("parsed\n %+v\nwant\n %+v", got[:len(want)], want)
	}
	for _, bad := range []string{"no_value\n", `m{a="x} 1` + "\n", `m{a=x} 1` + "\n", "m 1 2 3\n", "m one\n"} {
		if _, err := ParsePromText(strings.NewReader(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSampler(t *testing.T) {
	var scrapes atomic.Int64
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		fmt.Fprintf(w, "# TYPE parley_gateway_connections gauge\n"+
			"parley_gateway_connections{proto=\"json\"} %d\nparley_gateway_connections{proto=\"proto\"} 1000\n"+
			"go_gc_duration_seconds{quantile=\"0.5\"} NaN\n", n)
	}))
	defer good.Close()
	bad := httptest.NewServer(http.NotFoundHandler())
	defer bad.Close()

	child := startSleep(t)
	s := Start(Config{
		Interval:  20 * time.Millisecond,
		Processes: []Target{{"self", os.Getpid()}, {"sleep", child.Process.Pid}},
		Endpoints: []Endpoint{{"gw", good.URL}, {"down", bad.URL}},
		Metrics:   []string{"parley_gateway_connections", "absent_metric", "go_gc_duration_seconds"},
		Client:    &http.Client{Timeout: 10 * time.Second}, // the default (the interval) is too tight under -race
	})
	burn(t, 100*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // at least a few samples, however busy the machine
	_ = child.Process.Kill()
	_ = child.Wait()
	burn(t, 50*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	r := s.Stop()

	self, sleep := r.Processes[0], r.Processes[1]
	if len(self.Points) < 5 || self.Error != "" {
		t.Fatalf("self: %d points, error %q", len(self.Points), self.Error)
	}
	if len(sleep.Points) == 0 || sleep.Error == "" || len(sleep.Points) >= len(self.Points) {
		t.Fatalf("killed child: %d points (self %d), error %q; want sampling to stop with an error", len(sleep.Points), len(self.Points), sleep.Error)
	}
	sum := r.Summary
	if p := sum.Processes[0]; p.CPUSeconds <= 0 || p.MeanCPUPercent <= 0 || p.PeakCPUPercent < p.MeanCPUPercent || p.PeakRSSBytes <= 0 || p.PeakThreads < 2 {
		t.Fatalf("self summary %+v", p)
	}
	if tot := sum.Total; tot.PeakRSSBytes < sum.Processes[0].PeakRSSBytes || tot.CPUSeconds != sum.Processes[0].CPUSeconds+sum.Processes[1].CPUSeconds {
		t.Fatalf("total %+v does not add up the processes %+v", tot, sum.Processes)
	}

	byName := map[string]MetricSeries{}
	for _, m := range r.Metrics {
		byName[m.Endpoint+"/"+m.Metric] = m
	}
	conns := byName["gw/parley_gateway_connections"]
	if len(conns.Points) < 5 || conns.Errors != 0 {
		t.Fatalf("connections: %d points, %d errors", len(conns.Points), conns.Errors)
	}
	for i, p := range conns.Points {
		if want := float64(1000 + i + 1); p.Value != want {
			t.Fatalf("point %d = %v, want the label sets summed: %v", i, p.Value, want)
		}
	}
	for _, name := range []string{"gw/absent_metric", "gw/go_gc_duration_seconds"} {
		if m := byName[name]; len(m.Points) != 0 || m.Errors != 0 {
			t.Fatalf("%s: %+v; want no points (absent, or NaN) and no errors", name, m)
		}
	}
	if m := byName["down/parley_gateway_connections"]; len(m.Points) != 0 || m.Errors != len(conns.Points) || !strings.Contains(m.Error, "404") {
		t.Fatalf("failing endpoint: %d points, %d errors, %q", len(m.Points), m.Errors, m.Error)
	}
	var ms MetricSummary
	for _, m := range sum.Metrics {
		if m.Endpoint == "gw" && m.Metric == "parley_gateway_connections" {
			ms = m
		}
	}
	n := float64(len(conns.Points))
	if ms.Points != len(conns.Points) || ms.Last != 1000+n || ms.Max != 1000+n || math.Abs(ms.Mean-(1000+(n+1)/2)) > 1e-9 {
		t.Fatalf("metric summary %+v for %v points", ms, n)
	}
}
