// Package load is the bench harness's load engine: one Worker holds a share
// of the simulated users of a run, each a WebSocket connection subscribed to
// its rooms, and drives them through phases a coordinator orders: Prepare
// (tokens), Connect, Run (a load step: sends, history reads, a disruption),
// Drain, Report.
//
// Every message a worker sends carries its send time in the body (see Body),
// so receivers in any worker on the machine measure send→deliver; senders
// measure send→ack. Every delivery also goes through a verify.Verifier, so
// loss, duplication and reordering are checked while measuring. Reports
// hold mergeable histograms, per-second series and the verifier summary;
// an Aggregate merges them across workers and phases.
package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/verify"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Timeouts that bound every request and connection attempt.
const (
	dialTimeout     = 30 * time.Second // one connection attempt, subscriptions included
	requestTimeout  = 30 * time.Second // one request's answer
	connectAttempts = 3
)

// Worker runs one process's share of a bench run. Its phase methods are
// called one at a time; Stats may be called concurrently with them.
type Worker struct {
	plan  Plan
	api   *API
	v     *verify.Verifier
	conns []*conn
	dials chan struct{} // semaphore of connection attempts in flight

	m      atomic.Pointer[measure]
	recent atomic.Pointer[metrics.Recorder] // send→deliver since the last Stats
	fanout *fanoutTracker                   // nil unless Plan.Fanout

	up       atomic.Int64  // published connections
	resuming atomic.Int64  // clients dropped and not yet caught up
	nextID   atomic.Uint64 // for client_msg_ids

	ctx     context.Context // the worker's life, for reconnects; Close ends it
	cancel  context.CancelFunc
	closing atomic.Bool
}

// NewWorker returns a worker for plan; nothing is connected yet.
func NewWorker(plan Plan) *Worker {
	plan.EventBuffer = max(plan.EventBuffer, 64)
	plan.DialConcurrency = max(plan.DialConcurrency, 1)
	w := &Worker{
		plan:  plan,
		api:   NewAPI(plan.API, 32),
		v:     verify.New(),
		dials: make(chan struct{}, plan.DialConcurrency),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.m.Store(newMeasure())
	w.recent.Store(metrics.NewRecorder())
	if plan.Fanout {
		w.fanout = &fanoutTracker{m: make(map[fanoutKey]*FanoutPoint)}
	}
	for _, p := range plan.Clients {
		w.conns = append(w.conns, newConn(w, p))
	}
	return w
}

func (w *Worker) measure() *measure { return w.m.Load() }

func (w *Worker) fail(op string, err error) {
	if err == nil {
		err = errors.New("unknown")
	}
	w.measure().errors.add(errorClass(op, err), err)
}

// Prepare gets every user's token.
func (w *Worker) Prepare(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, cn := range w.conns {
		g.Go(func() error {
			var err error
			for attempt := 1; attempt <= connectAttempts; attempt++ {
				if cn.token, err = w.api.Token(ctx, cn.user); err == nil || !Sleep(ctx, backoff(reconnectBackoff, attempt)) {
					break
				}
			}
			return err
		})
	}
	return g.Wait()
}

// Connect connects every user and subscribes its rooms, each with up to
// connectAttempts tries. Failures are counted, not returned: a connection
// storm's failures are a result.
func (w *Worker) Connect(ctx context.Context) {
	m := w.measure()
	m.start = time.Now()
	var wg sync.WaitGroup
	for _, cn := range w.conns {
		wg.Go(func() {
			for attempt := 1; attempt <= connectAttempts; attempt++ {
				err := w.dial(ctx, cn)
				if err == nil {
					return
				}
				w.fail("connect", err)
				if attempt == connectAttempts || !Sleep(ctx, backoff(reconnectBackoff, attempt)) {
					return
				}
			}
		})
	}
	wg.Wait()
	m.end = time.Now()
}

// dial makes one connection attempt for cn within the dial concurrency.
func (w *Worker) dial(ctx context.Context, cn *conn) error {
	select {
	case w.dials <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.dials }()
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	return cn.connect(ctx)
}

// Drain waits until no delivery arrived for quiet and no client is still
// resuming, at most limit; it reports whether that happened.
func (w *Worker) Drain(ctx context.Context, quiet, limit time.Duration) bool {
	start := time.Now()
	last, since := w.measure().count(Delivered), start
	for Sleep(ctx, quiet/10) {
		now := time.Now()
		if n := w.measure().count(Delivered); n != last {
			last, since = n, now
		}
		if w.resuming.Load() == 0 && now.Sub(since) >= quiet {
			return true
		}
		if now.Sub(start) > limit {
			w.fail("drain", fmt.Errorf("deliveries or resumes still going on after %v (%d clients resuming)", limit, w.resuming.Load()))
			return false
		}
	}
	return false
}

// Report returns what was measured since the previous report and starts
// afresh. A final report also carries the verifier's summary.
func (w *Worker) Report(final bool) (Report, error) {
	m := w.m.Swap(newMeasure())
	r := Report{
		Start:     m.start,
		End:       m.end,
		Counts:    make(map[string]uint64),
		Errors:    m.errors.export(),
		Latencies: make(map[string]metrics.Encoded),
		Series:    make(map[string]metrics.SeriesData),
	}
	if r.End.IsZero() {
		r.End = time.Now()
	}
	for c := range numCounters {
		if n := m.count(c); n > 0 {
			r.Counts[c.String()] = n
		}
	}
	for name, rec := range m.latency {
		if rec.Snapshot().Count == 0 {
			continue
		}
		enc, err := rec.Encode()
		if err != nil {
			return Report{}, fmt.Errorf("encode %s: %w", name, err)
		}
		r.Latencies[name] = enc
	}
	for name, s := range m.series {
		d, err := s.Export()
		if err != nil {
			return Report{}, fmt.Errorf("export %s: %w", name, err)
		}
		if len(d.Intervals) > 0 {
			r.Series[name] = d
		}
	}
	if w.fanout != nil {
		r.Fanout = w.fanout.export()
	}
	if final {
		s := w.v.Summary()
		r.Verify = &s
	}
	return r, nil
}

// Stats are a worker's running figures, for a progress line.
type Stats struct {
	Connections int64         `json:"connections"` // open now
	Sent        uint64        `json:"sent"`        // in the current phase
	Acked       uint64        `json:"acked"`
	Delivered   uint64        `json:"delivered"`
	Errors      uint64        `json:"errors"`
	P99         time.Duration `json:"p99_ns"` // send→deliver since the previous Stats
	Verify      verify.Live   `json:"verify"`
}

// Add sums o into s; P99 becomes the larger of the two, an upper bound.
func (s *Stats) Add(o Stats) {
	s.Connections += o.Connections
	s.Sent += o.Sent
	s.Acked += o.Acked
	s.Delivered += o.Delivered
	s.Errors += o.Errors
	s.P99 = max(s.P99, o.P99)
	s.Verify.Duplicated += o.Verify.Duplicated
	s.Verify.Reordered += o.Verify.Reordered
	s.Verify.Gaps += o.Verify.Gaps
	s.Verify.Missing += o.Verify.Missing
}

// Stats returns the running figures; P99 covers the time since the
// previous call.
func (w *Worker) Stats() Stats {
	m := w.measure()
	s := Stats{
		Connections: w.up.Load(),
		Sent:        m.count(Sent),
		Acked:       m.count(Acked),
		Delivered:   m.count(Delivered),
		P99:         w.recent.Swap(metrics.NewRecorder()).Snapshot().P99,
		Verify:      w.v.Live(),
	}
	for _, e := range m.errors.export() {
		s.Errors += e.Count
	}
	return s
}

// Close ends every connection; the worker is not usable afterwards.
func (w *Worker) Close() {
	w.closing.Store(true)
	w.cancel()
	for _, cn := range w.conns {
		cn.close()
	}
}

// delivered records a message event received at.
func (w *Worker) delivered(msg *pb.Message, at time.Time) {
	m := w.measure()
	m.add(Delivered, 1)
	sentAt, ok := SentAt(msg.GetBody().GetText())
	if !ok {
		m.series[SeriesDelivered].Add(at, 1)
		return
	}
	d := at.Sub(sentAt)
	m.latency[SendDeliver].Record(d)
	m.series[SeriesDelivered].Record(at, d)
	m.series[SeriesBySend].Record(sentAt, d)
	w.recent.Load().Record(d)
	if w.fanout != nil {
		w.fanout.add(msg, sentAt, at)
	}
}

// fanoutTracker keeps, per message, when this worker's last receiver got it.
type fanoutTracker struct {
	mu sync.Mutex
	m  map[fanoutKey]*FanoutPoint
}

func (f *fanoutTracker) add(msg *pb.Message, sentAt, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fanoutKey{msg.Room, msg.Seq}
	p := f.m[k]
	if p == nil {
		p = &FanoutPoint{Room: msg.Room, Seq: msg.Seq, SentAt: sentAt.UnixNano()}
		f.m[k] = p
	}
	p.Last = max(p.Last, at.UnixNano())
	p.Receivers++
}

// export returns the points and forgets them.
func (f *fanoutTracker) export() []FanoutPoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FanoutPoint, 0, len(f.m))
	for _, p := range f.m {
		out = append(out, *p)
	}
	clear(f.m)
	return out
}
