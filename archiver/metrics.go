package archiver

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/internal/ops"
)

var (
	descArchived = ops.Desc("archiver_archived_total",
		"Messages written to the history store and acked, redeliveries included.")
	descLagMessages = ops.Desc("archiver_lag_messages",
		"Messages of CHAT_MSG not yet archived (the durable's pending and unacked messages).")
	descLagSeconds = ops.Desc("archiver_lag_seconds",
		"Age of the oldest message of CHAT_MSG not yet archived; 0 when none is.")
)

// lagTimeout bounds the JetStream lookups of one scrape.
const lagTimeout = 2 * time.Second

func newBatchSeconds() prometheus.Histogram {
	return ops.Latency("archiver_batch_seconds", "Time to write one batch to the history store, retries included.")
}

// Describe implements prometheus.Collector.
func (a *Archiver) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descArchived, descLagMessages, descLagSeconds} {
		ch <- d
	}
	a.batchSeconds.Describe(ch)
}

// Collect implements prometheus.Collector. The lag is read from
// JetStream at each scrape (shared by every archiver on the durable);
// when JetStream does not answer, it is left out.
func (a *Archiver) Collect(ch chan<- prometheus.Metric) {
	ops.Count(ch, descArchived, a.archived.Load())
	a.batchSeconds.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
	defer cancel()
	msgs, age, err := a.cons.Lag(ctx)
	if err != nil {
		a.log.Debug("archiver lag unknown", zap.Error(err))
		return
	}
	ops.Level(ch, descLagMessages, float64(msgs))
	ops.Level(ch, descLagSeconds, age.Seconds())
}
