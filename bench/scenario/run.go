package scenario

import (
	"context"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/parley-chat/parley/bench/coord"
	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/bench/report"
	"github.com/parley-chat/parley/bench/sample"
	"github.com/parley-chat/parley/bench/verify"
)

// Env is what every scenario runs against, and how.
type Env struct {
	URLs []string // gateway WebSocket URLs; clients are spread over them
	API  string   // HTTP API base URL
	// NATSURL is the server's NATS, for the baseline and the backlog check:
	// a comma-separated list for a cluster's servers, as nats.Connect takes it.
	NATSURL string
	// ServerPIDs are the server processes to sample; Metrics their
	// Prometheus endpoints.
	ServerPIDs []int
	Metrics    []string

	Spawn     coord.Spawner
	Workers   int // 0: as many as PerWorker needs
	PerWorker int // clients per worker process

	BodySize        int
	EventBuffer     int // per connection
	DialConcurrency int // per worker
	MaxInFlight     int // requests awaiting answers, per worker
	Baseline        int // messages of the raw JetStream baseline; 0 skips it
	BaselineWindow  int // its publishes in flight

	Progress bool      // print a live progress line
	Log      io.Writer // status lines
}

// Outcome is everything a run measured.
type Outcome struct {
	Result  *report.Result
	Design  Design
	Workers int
	// ServerRSSBefore is the server's RSS before any client connected;
	// MetricsBefore its metrics then, each summed over the endpoints.
	ServerRSSBefore int64
	MetricsBefore   map[string]float64
	Connect         *load.Aggregate // the connect phase
	Hold            *load.Aggregate // the hold, if any
	Steps           []StepOutcome
	Total           *load.Aggregate // every step, merged
	Server          *sample.Result  // over the hold, or over the steps
	Backlog         *uint64         // the server's unfinished messages after the drain, if known
	Archive         *ArchiveCheck   // the history store against the rooms, with Design.Archive
	Findings        Findings
}

// StepOutcome is one step's share of the run.
type StepOutcome struct {
	Step       Step
	Start, End time.Time // the load, before the drain
	Agg        *load.Aggregate
	CPU        Contention // over Start..End
	Fault      FaultRun   // what the step's fault did, if it had one
	// ArchiverLag is the archiver's backlog each second of a fault's step.
	ArchiverLag []LagPoint
	Verify      *verify.Totals // the run's verification up to this step's end, with Design.VerifySteps
}

// Drain settings: a step is over once nothing was delivered for drainQuiet.
const (
	drainQuiet = 2 * time.Second
	drainLimit = 90 * time.Second
	// settleLimit bounds the wait for an earlier run's backlog,
	// disconnectLimit the wait for the server to close the run's clients.
	settleLimit     = 2 * time.Minute
	disconnectLimit = 30 * time.Second
	// startDelay lets every worker receive a command before its start time.
	startDelay = 500 * time.Millisecond
)

// runner is one run in progress.
type runner struct {
	env   Env
	name  string
	o     *Outcome
	c     *coord.Coordinator
	rooms []string // ids, by the design's room index
}

func (r *runner) logf(format string, a ...any) {
	fmt.Fprintf(r.env.Log, "bench %s: "+format+"\n", append([]any{r.name}, a...)...)
}

// Run runs scenario name as d designs it.
func Run(ctx context.Context, env Env, name string, d Design) (*Outcome, error) {
	r := &runner{env: env, name: name, o: &Outcome{
		Design: d, Result: report.New(name, d.Params), Connect: load.NewAggregate(), Total: load.NewAggregate(),
	}}
	o := r.o
	o.Result.Servers = serverProcesses(env.ServerPIDs)
	r.settle(ctx)
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	defer r.closeWorkers()

	o.ServerRSSBefore = serverRSS(env.ServerPIDs)
	o.MetricsBefore = scrape(ctx, env.Metrics)
	var err error
	if d.Hold > 0 {
		// The server is sampled from before the storm to the end of the hold.
		o.Server, err = r.sampled(ctx, func() error {
			if err := r.connect(ctx); err != nil {
				return err
			}
			return r.hold(ctx)
		})
	} else {
		err = r.connect(ctx)
	}
	if err != nil {
		return nil, err
	}
	if len(d.Steps) > 0 {
		if o.Server, err = r.sampled(ctx, func() error { return r.steps(ctx) }); err != nil {
			return nil, err
		}
		if env.NATSURL != "" {
			// Right after the drain: what the processor and archiver still owe.
			if n, err := backlog(ctx, env.NATSURL, 0); err == nil {
				o.Backlog = &n
			}
		}
		if d.Archive {
			o.Archive = checkArchive(ctx, env.NATSURL, o.Total.Verify, r.logf)
		}
	}
	// The baseline runs on a server without the run's clients.
	r.closeWorkers()
	if env.Baseline > 0 && env.NATSURL != "" {
		r.waitDisconnected(ctx)
		r.logf("baseline: raw JetStream publish of %d messages", env.Baseline)
		if b, err := runBaseline(ctx, env); err != nil {
			r.logf("baseline failed: %v", err)
			o.Findings.Notes = append(o.Findings.Notes, "The raw JetStream baseline failed: "+err.Error())
		} else {
			o.Result.Baselines = append(o.Result.Baselines, b)
		}
	}
	o.Result.End = time.Now()
	o.Result.Run = o.run()
	o.Findings.add(genericFindings(o))
	if d.Findings != nil {
		o.Findings.add(d.Findings(o))
	}
	return o, nil
}

// closeWorkers closes every client and ends the workers, once.
func (r *runner) closeWorkers() {
	if r.c == nil {
		return
	}
	if err := r.c.Close(); err != nil {
		r.logf("closing workers: %v", err)
	}
	r.c = nil
}

// waitDisconnected waits, at most disconnectLimit, until the gateways
// report no connection left, so that closing them does not load what
// comes next.
func (r *runner) waitDisconnected(ctx context.Context) {
	const metric = "parley_gateway_connections"
	deadline := time.Now().Add(disconnectLimit)
	for {
		n, ok := scrape(ctx, r.env.Metrics)[metric]
		if !ok || n == 0 || time.Now().After(deadline) || !load.Sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

// settle waits for an earlier run's backlog to clear, as far as it can.
func (r *runner) settle(ctx context.Context) {
	if r.env.NATSURL == "" {
		return
	}
	switch n, err := backlog(ctx, r.env.NATSURL, settleLimit); {
	case err != nil:
		r.logf("cannot read the server's backlog: %v", err)
	case n > 0:
		r.logf("the server still has %d messages to process after %v; they load this run", n, settleLimit)
	}
}

// setup creates the users' rooms, starts the workers and has them get
// their users' tokens.
func (r *runner) setup(ctx context.Context) error {
	d := r.o.Design
	users := userNames(r.o.Result.Start, len(d.Clients))
	t0 := time.Now()
	var err error
	if r.rooms, err = createRooms(ctx, load.NewAPI(r.env.API, 16), r.name, users, d.rooms()); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	plans := workerPlans(r.env, d, users, r.rooms)
	r.o.Workers = len(plans)
	r.logf("%d rooms created in %v; %d clients over %d workers", len(r.rooms), time.Since(t0).Round(time.Millisecond), len(d.Clients), len(plans))

	if r.c, err = coord.Start(ctx, r.env.Spawn, len(plans)); err != nil {
		return err
	}
	t0 = time.Now()
	if _, err := r.c.Do(ctx, func(i int) coord.Command { return coord.Command{Op: coord.OpPlan, Plan: &plans[i]} }); err != nil {
		r.c.Close()
		return fmt.Errorf("prepare workers: %w", err)
	}
	r.logf("%d tokens in %v", len(d.Clients), time.Since(t0).Round(time.Millisecond))
	return nil
}

// connect connects every client at once.
func (r *runner) connect(ctx context.Context) error {
	d := r.o.Design
	final := len(d.Steps) == 0 && d.Hold == 0
	if err := phase(ctx, r.c, coord.Command{Op: coord.OpConnect, At: time.Now().Add(startDelay)}, final, r.o.Connect); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	a := r.o.Connect
	took := a.End.Sub(a.Start)
	r.logf("%d of %d clients connected in %v (%.0f/s), %d errors", a.Count(load.Connected), len(d.Clients),
		took.Round(time.Millisecond), perSecond(a.Count(load.Connected), took), a.ErrorTotal())
	return nil
}

// hold keeps the connections open and idle.
func (r *runner) hold(ctx context.Context) error {
	r.logf("holding the connections for %v", r.o.Design.Hold)
	if !load.Sleep(ctx, r.o.Design.Hold) {
		return ctx.Err()
	}
	r.o.Hold = load.NewAggregate()
	return phase(ctx, r.c, coord.Command{Op: coord.OpReport, Final: len(r.o.Design.Steps) == 0}, false, r.o.Hold)
}

// sampled runs f while sampling the server.
func (r *runner) sampled(ctx context.Context, f func() error) (*sample.Result, error) {
	s := startSampler(ctx, r.env)
	err := f()
	res := s.Stop()
	return &res, err
}

// steps runs every load step, each followed by a drain and a report,
// with a progress line. A step's fault runs alongside its load.
func (r *runner) steps(ctx context.Context) error {
	if r.env.Progress {
		p := report.StartProgress(func() report.ProgressStats { return progressStats(r.c.Stats()) })
		defer p.Stop()
	}
	o := r.o
	for i, st := range o.Design.Steps {
		start := time.Now().Add(startDelay)
		traffic := splitTraffic(st, r.c.Workers(), r.rooms, r.env.MaxInFlight)
		r.logf("step %s: %v at %.0f msg/s", st.Name, st.Duration, st.Rate)
		before := readCPU(r.env.ServerPIDs, benchPIDs(r.c))
		var fault chan FaultRun
		var lag func() []LagPoint
		if st.Fault != nil {
			fault = make(chan FaultRun, 1)
			go func() { fault <- st.Fault.inject(ctx, r.env, start, r.logf) }()
			if r.env.NATSURL != "" {
				lag = watchArchiver(ctx, r.env.NATSURL)
			}
		}
		if _, err := r.c.Do(ctx, func(w int) coord.Command {
			return coord.Command{Op: coord.OpRun, Traffic: &traffic[w], At: start}
		}); err != nil {
			return fmt.Errorf("step %s: %w", st.Name, err)
		}
		end := time.Now()
		so := StepOutcome{Step: st, Start: start, End: end, Agg: load.NewAggregate()}
		if fault != nil {
			so.Fault = <-fault
		}
		so.CPU = readCPU(r.env.ServerPIDs, benchPIDs(r.c)).since(before)
		if _, err := r.c.All(ctx, coord.Command{Op: coord.OpDrain, Quiet: drainQuiet, Limit: drainLimit}); err != nil {
			return fmt.Errorf("step %s: drain: %w", st.Name, err)
		}
		if lag != nil {
			so.ArchiverLag = lag()
		}
		last := i == len(o.Design.Steps)-1
		replies, err := r.c.All(ctx, coord.Command{Op: coord.OpReport, Final: last || o.Design.VerifySteps})
		if err != nil {
			return fmt.Errorf("step %s: %w", st.Name, err)
		}
		// The verifier's summary covers the run so far: the run's total
		// takes the last one only.
		if err := merge(replies, so.Agg); err != nil {
			return fmt.Errorf("step %s: %w", st.Name, err)
		}
		if err := merge(replies, o.Total, func(rep *load.Report) {
			if !last {
				rep.Verify = nil
			}
		}); err != nil {
			return fmt.Errorf("step %s: %w", st.Name, err)
		}
		if o.Design.VerifySteps {
			v := so.Agg.Verify.Totals()
			so.Verify = &v
		}
		o.Steps = append(o.Steps, so)
	}
	return nil
}

// benchPIDs are this process and the workers'.
func benchPIDs(c *coord.Coordinator) []int {
	pids := c.PIDs()
	if !slices.Contains(pids, os.Getpid()) {
		pids = append(pids, os.Getpid())
	}
	return pids
}

// phase sends cmd to every worker and, unless cmd is itself a report,
// asks for their reports (final ones if final); each report is merged
// into every one of aggs.
func phase(ctx context.Context, c *coord.Coordinator, cmd coord.Command, final bool, aggs ...*load.Aggregate) error {
	if cmd.Op != coord.OpReport {
		if _, err := c.All(ctx, cmd); err != nil {
			return err
		}
		cmd = coord.Command{Op: coord.OpReport, Final: final}
	}
	replies, err := c.All(ctx, cmd)
	if err != nil {
		return err
	}
	for _, agg := range aggs {
		if err := merge(replies, agg); err != nil {
			return err
		}
	}
	return nil
}

// merge adds the workers' reports to agg, each first changed by edit if
// given (on a copy).
func merge(replies []coord.Reply, agg *load.Aggregate, edit ...func(*load.Report)) error {
	for _, r := range replies {
		if r.Report == nil {
			return fmt.Errorf("a worker answered %s without a report", r.Op)
		}
		rep := *r.Report
		for _, e := range edit {
			e(&rep)
		}
		if err := agg.Add(rep); err != nil {
			return err
		}
	}
	return nil
}

// run assembles the report's figures of the whole run.
func (o *Outcome) run() report.Run {
	var window time.Duration
	for _, s := range o.Steps {
		window += s.Step.Duration
	}
	t := o.Total
	errs := o.Connect.ErrorTotal() + t.ErrorTotal()
	if o.Hold != nil {
		errs += o.Hold.ErrorTotal()
	}
	totals := report.Totals{
		Connections: o.Connect.Count(load.Connected),
		Sent:        t.Count(load.Sent),
		Acked:       t.Count(load.Acked),
		Delivered:   t.Count(load.Delivered),
		Errors:      errs,
	}
	tl := report.Timeline{
		Sent:        t.Series(load.SeriesSent).Rates(),
		Delivered:   t.Series(load.SeriesDelivered).Rates(),
		SendAck:     t.Series(load.SeriesAcked).Latencies(),
		SendDeliver: t.Series(load.SeriesDelivered).Latencies(),
	}
	r := report.Run{
		Totals:     totals,
		Throughput: report.NewThroughput(totals, window, tl),
		Latency:    report.Latency{SendAck: t.Latency(load.SendAck), SendDeliver: t.Latency(load.SendDeliver)},
		Server:     o.Server,
		Timeline:   tl,
	}
	if len(o.Steps) > 0 {
		v := t.Verify.Totals()
		r.Verify = &v
	}
	return r
}

// progressStats turns the workers' running figures into a progress line.
func progressStats(s load.Stats) report.ProgressStats {
	return report.ProgressStats{
		Sent: s.Sent, Delivered: s.Delivered, P99: s.P99,
		Lost: s.Verify.Missing, Duplicated: s.Verify.Duplicated, Reordered: s.Verify.Reordered,
	}
}

// userNames names n users uniquely for a run starting at start, so runs
// against one server never share users.
func userNames(start time.Time, n int) []string {
	prefix := "b" + strconv.FormatInt(start.Unix(), 36) + "-"
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// serverRSS adds up the processes' resident memory; 0 if unreadable.
func serverRSS(pids []int) int64 {
	var n int64
	for _, pid := range pids {
		if p, err := sample.ReadProc(pid); err == nil {
			n += p.RSSBytes
		}
	}
	return n
}

// serverProcesses describes the sampled processes by their command lines,
// secrets left out.
func serverProcesses(pids []int) []report.ServerProcess {
	out := make([]report.ServerProcess, len(pids))
	for i, pid := range pids {
		out[i].PID = pid
		if cmd, err := sample.ReadCmdline(pid); err == nil {
			out[i].Command = report.Redact(cmd)
		}
	}
	return out
}

// wantedMetrics are the server metrics sampled when the server has them.
var wantedMetrics = []string{
	"parley_gateway_connections", "parley_gateway_rooms", "parley_gateway_deliveries_total",
	"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_gc_heap_live_bytes", "go_goroutines", "process_resident_memory_bytes",
}

// scrape reads the endpoints' metrics, summing each over the endpoints.
func scrape(ctx context.Context, urls []string) map[string]float64 {
	out := map[string]float64{}
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, url := range urls {
		got, err := sample.ScrapeProm(ctx, hc, url)
		if err != nil {
			continue
		}
		for _, s := range got {
			out[s.Name] += s.Value
		}
	}
	return out
}

// startSampler samples the server processes and whichever wanted metrics
// their endpoints expose.
func startSampler(ctx context.Context, env Env) *sample.Sampler {
	cfg := sample.Config{Interval: time.Second, Client: &http.Client{Timeout: 5 * time.Second}}
	for i, pid := range env.ServerPIDs {
		cfg.Processes = append(cfg.Processes, sample.Target{Name: "server " + strconv.Itoa(i+1), PID: pid})
	}
	for i, url := range env.Metrics {
		name := "gateway " + strconv.Itoa(i+1)
		if u, err := neturl.Parse(url); err == nil && len(env.Metrics) > 1 {
			name += " (" + u.Host + ")"
		}
		cfg.Endpoints = append(cfg.Endpoints, sample.Endpoint{Name: name, URL: url})
	}
	have := scrape(ctx, env.Metrics)
	for _, m := range wantedMetrics {
		if _, ok := have[m]; ok {
			cfg.Metrics = append(cfg.Metrics, m)
		}
	}
	return sample.Start(cfg)
}

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
