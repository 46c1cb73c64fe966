package scenario

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/report"
)

// The baseline's stream, made for the baseline and deleted after it.
const (
	baselineStream  = "BENCH_BASELINE"
	baselineSubject = "bench.baseline.msg"
	// baselineLimit bounds the whole baseline, publishing and acks.
	baselineLimit = 2 * time.Minute
)

// runBaseline publishes env.Baseline messages of the bench's body size to
// a file-storage stream on the server's own NATS, asynchronously with
// acks, as fast as env.BaselineWindow publishes in flight allow: what
// JetStream alone does on this machine, to read Parley's figures against.
// Bodies carry their publish time, so acks measure publish→ack.
func runBaseline(ctx context.Context, env Env) (report.Baseline, error) {
	b := report.Baseline{
		Name: "raw JetStream",
		Description: fmt.Sprintf("async publish with acks of %d × %d-byte messages, %d in flight, to a file-storage stream on the same server (no Parley)",
			env.Baseline, env.BodySize, env.BaselineWindow),
	}
	nc, err := nats.Connect(env.NATSURL, nats.Name("parley-bench-baseline"))
	if err != nil {
		return b, err
	}
	defer nc.Close()

	lat := metrics.NewRecorder()
	sent, acked := metrics.NewSeries(time.Second), metrics.NewSeries(time.Second)
	var acks, failures atomic.Uint64
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(max(env.BaselineWindow, 1)),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			now := time.Now()
			if t, ok := load.SentAt(string(m.Data)); ok {
				lat.Record(now.Sub(t))
				acked.Record(now, now.Sub(t))
			}
			acks.Add(1)
		}),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failures.Add(1) }),
	)
	if err != nil {
		return b, err
	}
	ctx, cancel := context.WithTimeout(ctx, baselineLimit)
	defer cancel()
	// A stream left by an interrupted run would hold its messages.
	if err := js.DeleteStream(ctx, baselineStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return b, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: baselineStream, Subjects: []string{"bench.baseline.>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		return b, err
	}
	defer js.DeleteStream(context.Background(), baselineStream)

	sampler := startSampler(ctx, env)
	start := time.Now()
	published := 0
	for published < env.Baseline && ctx.Err() == nil {
		now := time.Now()
		// PublishAsync waits while the window is full and fails if it stays
		// full; then the loop tries again, within baselineLimit.
		if _, err := js.PublishAsync(baselineSubject, []byte(load.Body(now, env.BodySize))); errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			continue
		} else if err != nil {
			sampler.Stop()
			return b, err
		}
		sent.Add(now, 1)
		published++
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
	}
	end := time.Now()
	server := sampler.Stop()
	if ctx.Err() != nil {
		return b, fmt.Errorf("%d of %d published, %d acked within %v", published, env.Baseline, acks.Load(), baselineLimit)
	}

	totals := report.Totals{Sent: uint64(published), Acked: acks.Load(), Errors: failures.Load()}
	tl := report.Timeline{Sent: sent.Rates(), SendAck: acked.Latencies()}
	b.Run = report.Run{
		Totals:     totals,
		Throughput: report.NewThroughput(totals, end.Sub(start), tl),
		Latency:    report.Latency{SendAck: lat.Snapshot()},
		Server:     &server,
		Timeline:   tl,
	}
	return b, nil
}
