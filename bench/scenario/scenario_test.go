package scenario

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/bench/coord"
	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/bench/report"
	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/gateway"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/natsembed"
	"github.com/parley-chat/parley/internal/store/pebblestore"
	"github.com/parley-chat/parley/pkg/store"
)

// workerEnv makes the test binary a bench worker, for tests of real
// worker processes.
const workerEnv = "PARLEY_BENCH_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := coord.Serve(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startNode runs a whole Parley node in this process: embedded NATS on a
// free port, Pebble, the gateway on a free loopback port.
func startNode(t *testing.T) *node.Node {
	t.Helper()
	dir := t.TempDir()
	log := zap.NewNop()
	cfg := node.Config{
		Roles:    node.Roles{Gateway: true, Processor: true, Archiver: true},
		DataDir:  dir,
		Embedded: true,
		NATS:     natsembed.Config{Name: "bench-test", Port: -1, StoreDir: filepath.Join(dir, "nats")},
		Streams:  bus.StreamConfig{Partitions: 8},
		OpenStore: func(context.Context) (store.Store, error) {
			return pebblestore.Open(filepath.Join(dir, "store"), log)
		},
		HTTPAddr: "127.0.0.1:0",
		Gateway:  gateway.Config{DevTokens: true},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(n.Close)
	return n
}

// testEnv targets n with two workers; the server it samples is this
// process, which runs the node.
func testEnv(t *testing.T, n *node.Node, spawn coord.Spawner) Env {
	return Env{
		URLs:            []string{"ws://" + n.HTTPAddr() + "/ws"},
		API:             "http://" + n.HTTPAddr(),
		NATSURL:         n.NATSURL(),
		ServerPIDs:      []int{os.Getpid()},
		Metrics:         []string{"http://" + n.HTTPAddr() + "/metrics"},
		Spawn:           spawn,
		Workers:         2,
		PerWorker:       1000,
		BodySize:        64,
		EventBuffer:     256,
		DialConcurrency: 16,
		MaxInFlight:     100,
		Baseline:        500,
		BaselineWindow:  100,
		Log:             testLog{t},
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// design builds scenario name's Design from command-line flags.
func design(t *testing.T, name string, args ...string) Design {
	t.Helper()
	sc, ok := Lookup(name)
	if !ok {
		t.Fatalf("no scenario %s", name)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	build := sc.Bind(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	d, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// run runs a scenario and writes its report, as the command does.
func run(t *testing.T, env Env, name string, d Design) *Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o, err := Run(ctx, env, name, d)
	if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	dir := report.Dir(t.TempDir(), name, o.Result.Start)
	if err := report.Write(dir, o.Result); err != nil {
		t.Fatal(err)
	}
	if err := WriteFindings(dir, o.Findings); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil || !strings.Contains(string(md), "## Findings") {
		t.Fatalf("summary.md without findings (%v)", err)
	}
	return o
}

// checkClean asserts every message was sent, acked and delivered to each
// member exactly once and in order, with nothing failing.
func checkClean(t *testing.T, o *Outcome, membersPerRoom uint64) {
	t.Helper()
	v := o.Result.Run.Verify
	if v == nil || !v.Clean() {
		t.Fatalf("verification not clean: %+v", v)
	}
	if v.Sent == 0 || v.Acked != v.Sent || v.Delivered != v.Acked*membersPerRoom {
		t.Fatalf("sent %d, acked %d, delivered %d: want all acked and each delivered to %d members", v.Sent, v.Acked, v.Delivered, membersPerRoom)
	}
	run := o.Result.Run
	if run.Latency.SendAck.Count != int64(v.Acked) || run.Latency.SendDeliver.Count != int64(v.Delivered) {
		t.Fatalf("histograms hold %d acks and %d deliveries, want %d and %d", run.Latency.SendAck.Count, run.Latency.SendDeliver.Count, v.Acked, v.Delivered)
	}
	if len(run.Timeline.Sent) == 0 || len(run.Timeline.SendDeliver) == 0 {
		t.Fatal("empty timeline")
	}
	if run.Totals.Errors != 0 {
		t.Fatalf("%d errors: %+v", run.Totals.Errors, o.Findings.Tables)
	}
	if f, ok := figure(o, "Messages stored twice"); !ok || f.Value != 0 {
		t.Fatalf("findings report %+v messages stored twice (found: %v), want 0", f, ok)
	}
}

func TestGroupsAcrossWorkers(t *testing.T) {
	n := startNode(t)
	for _, c := range []struct {
		name  string
		spawn coord.Spawner
	}{
		{"goroutines", coord.InProcess()},
		{"processes", coord.Exec([]string{os.Args[0]}, workerEnv+"=1")},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := design(t, "groups", "--rooms", "4", "--members", "3", "--rate", "60", "--duration", "2s")
			env := testEnv(t, n, c.spawn)
			// A cluster's list of servers, one of them down: the baseline still runs.
			env.NATSURL = "nats://127.0.0.1:1," + env.NATSURL
			o := run(t, env, "groups", d)
			checkClean(t, o, 3)
			if f, ok := figure(o, "Reconnects"); !ok || f.Value != 0 || !slices.Equal(stepColumn(t, o, "reconnects"), []string{"0"}) {
				t.Fatalf("reconnects: figure %+v (found %v), steps %q; want 0", f, ok, stepColumn(t, o, "reconnects"))
			}
			if o.Workers != 2 || o.Result.Run.Verify.Receivers != 12 {
				t.Fatalf("%d workers, %d receivers; want 2 workers sharing 12", o.Workers, o.Result.Run.Verify.Receivers)
			}
			if sent := o.Result.Run.Totals.Sent; sent < 100 || sent > 121 {
				t.Fatalf("sent %d messages at 60/s for 2 s", sent)
			}
			if bl := o.Result.Baselines; len(bl) != 1 || bl[0].Run.Totals.Acked != 500 || bl[0].Run.Latency.SendAck.Count != 500 {
				t.Fatalf("baseline %+v", bl)
			}
			if o.Server == nil || len(o.Server.Processes) != 1 || len(o.Server.Processes[0].Points) == 0 {
				t.Fatal("the server was not sampled")
			}
		})
	}
}

func TestReconnectCatchesUp(t *testing.T) {
	n := startNode(t)
	d := design(t, "reconnect", "--clients", "12", "--room-size", "4", "--rate", "60", "--duration", "3s", "--drop-at", "1s")
	o := run(t, testEnv(t, n, coord.InProcess()), "reconnect", d)
	checkClean(t, o, 4)
	tot := o.Total
	if tot.Count(load.Disrupted) != 12 || tot.Count(load.CaughtUp) != 12 || tot.Count(load.Reconnected) != 12 {
		t.Fatalf("disrupted %d, reconnected %d, caught up %d; want 12 each",
			tot.Count(load.Disrupted), tot.Count(load.Reconnected), tot.Count(load.CaughtUp))
	}
	if c := tot.Latency(load.CatchUp); c.Count != 12 || c.Max <= 0 {
		t.Fatalf("catch-up histogram %+v", c)
	}
	if f, _ := figure(o, "Reconnects"); f.Value != 12 {
		t.Fatalf("findings report %v reconnects, want 12", f.Value)
	}
	if got := stepColumn(t, o, "reconnects"); !slices.Equal(got, []string{"12"}) {
		t.Fatalf("steps table: reconnects %q, want [12]", got)
	}
}

// stepColumn returns a column of the findings' Steps table.
func stepColumn(t *testing.T, o *Outcome, column string) []string {
	t.Helper()
	for _, tb := range o.Findings.Tables {
		if i := slices.Index(tb.Header, column); tb.Title == "Steps" && i >= 0 {
			var out []string
			for _, r := range tb.Rows {
				out = append(out, r[i])
			}
			return out
		}
	}
	t.Fatalf("no column %q in a Steps table", column)
	return nil
}

func TestMegaroomFanout(t *testing.T) {
	n := startNode(t)
	d := design(t, "megaroom", "--members", "20", "--messages", "3", "--rate", "5")
	o := run(t, testEnv(t, n, coord.InProcess()), "megaroom", d)
	checkClean(t, o, 20)
	points := o.Total.Fanout()
	if len(points) != 3 {
		t.Fatalf("%d fan-out points, want 3", len(points))
	}
	for _, p := range points {
		if p.Receivers != 20 || p.Last < p.SentAt {
			t.Fatalf("fan-out %+v: want 20 receivers after the send", p)
		}
	}
}

func TestConnectHold(t *testing.T) {
	n := startNode(t)
	d := design(t, "connect", "--clients", "30", "--hold", "1500ms")
	env := testEnv(t, n, coord.InProcess())
	// Two endpoints, as with gateways sharing a port (here both the same).
	env.Metrics = append(env.Metrics, env.Metrics[0])
	o := run(t, env, "connect", d)
	if got := o.Result.Run.Totals.Connections; got != 30 || o.Result.Run.Totals.Errors != 0 {
		t.Fatalf("%d connections, %d errors", got, o.Result.Run.Totals.Errors)
	}
	if !hasFigure(o, "Server RSS per connection") || !hasFigure(o, "Server RSS per connection at the end of the hold") {
		t.Fatalf("no memory figure in %+v", o.Findings.Figures)
	}
	if !slices.ContainsFunc(o.Findings.Tables, func(t Table) bool { return t.Title == "Per process while holding" && len(t.Rows) == 2 }) {
		t.Fatalf("no per-process table in %+v", o.Findings.Tables)
	}
	if s := o.Result.Servers; len(s) != 1 || s[0].PID != os.Getpid() || len(s[0].Command) == 0 {
		t.Fatalf("server processes %+v", s)
	}
}

func TestFanout(t *testing.T) {
	n := startNode(t)
	d := design(t, "fanout", "--rooms", "2", "--members", "10", "--rate", "40", "--duration", "2s")
	o := run(t, testEnv(t, n, coord.InProcess()), "fanout", d)
	checkClean(t, o, 10)
	for _, name := range []string{"Fan-out deliveries/s", "Offered deliveries/s", "Fan-out time p50"} {
		if !hasFigure(o, name) {
			t.Fatalf("no %q in %+v", name, o.Findings.Figures)
		}
	}
	for _, f := range o.Findings.Figures {
		if f.Name == "Messages that reached every member" && f.Value < 70 {
			t.Fatalf("%v messages reached every member, want all ~80", f.Value)
		}
	}
}

func TestMixedReadsHistory(t *testing.T) {
	n := startNode(t)
	d := design(t, "mixed", "--idle", "6", "--active", "4", "--readers", "2", "--room-size", "4", "--rate", "40", "--history-rate", "20", "--duration", "2s")
	o := run(t, testEnv(t, n, coord.InProcess()), "mixed", d)
	checkClean(t, o, 4)
	if reads := o.Total.Count(load.HistoryReads); reads < 30 {
		t.Fatalf("%d history reads at 20/s for 2 s", reads)
	}
}

func TestDM(t *testing.T) {
	n := startNode(t)
	d := design(t, "dm", "--pairs", "5", "--rate", "40", "--duration", "1s")
	checkClean(t, run(t, testEnv(t, n, coord.InProcess()), "dm", d), 2)
}

// hasFigure reports whether the findings have a non-zero figure name.
func hasFigure(o *Outcome, name string) bool {
	f, ok := figure(o, name)
	return ok && f.Value != 0
}

func figure(o *Outcome, name string) (Figure, bool) {
	for _, f := range o.Findings.Figures {
		if f.Name == name {
			return f, true
		}
	}
	return Figure{}, false
}
