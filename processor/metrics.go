package processor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/internal/ops"
)

var (
	descMessages = ops.Desc("processor_messages_total",
		"Sends answered, by outcome: sequenced (appended to CHAT_MSG), duplicate (a resent client_msg_id, answered with its seq), rejected (not a member, forbidden, invalid), unavailable (transient failures), internal (unexpected failures), overloaded (past the queue bound).",
		"outcome")
	descFenced = ops.Desc("processor_fencing_conflicts_total",
		"Appends refused because another writer appended to the room first; the room is reloaded and the send retried.")
	descPartitions = ops.Desc("processor_partitions", "Partitions this processor holds.")
	descQueued     = ops.Desc("processor_queued", "Sends received and not yet answered: the processor's backlog.")
)

func newSendSeconds() prometheus.Histogram {
	return ops.Latency("processor_send_seconds",
		"Time from a send's arrival at the processor to its answer: queueing, checks and the CHAT_MSG append.")
}

// Describe implements prometheus.Collector.
func (p *Processor) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(p, ch) }

// Collect implements prometheus.Collector.
func (p *Processor) Collect(ch chan<- prometheus.Metric) {
	s := &p.stats
	for outcome, v := range map[string]uint64{
		"sequenced":   s.Sequenced.Load(),
		"duplicate":   s.Duplicates.Load(),
		"rejected":    s.Rejected.Load(),
		"unavailable": s.Unavailable.Load(),
		"internal":    s.Internal.Load(),
		"overloaded":  s.Overloaded.Load(),
	} {
		ops.Count(ch, descMessages, v, outcome)
	}
	ops.Count(ch, descFenced, s.Fenced.Load())
	ops.Level(ch, descPartitions, float64(len(p.Partitions())))
	ops.Level(ch, descQueued, float64(max(0, p.queued.Load())))
	p.sendSeconds.Collect(ch)
}
