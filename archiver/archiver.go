// Package archiver copies every room message from CHAT_MSG into the history
// store (the archiver role also serves queries of that store: package
// internal/history).
//
// The archiver is a durable pull consumer on the whole stream. It acks a
// message only after the store reports the batch holding it durable, so a
// message leaves the stream's pending set only once it is archived
// (invariant 1). Writes are idempotent upserts keyed (room, seq), so the
// redeliveries a crash or a shared durable cause are harmless, and several
// instances may share one durable to split the work.
package archiver

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// Config tunes an Archiver; zero fields take the defaults.
type Config struct {
	// Durable names the consumer; instances sharing it share the work.
	Durable string // default "archiver"
	// BatchSize caps the messages of one store write.
	BatchSize int // default 500
	// BatchWait is how long a batch waits to fill after its first message:
	// the archiving latency traded for fewer, larger writes.
	BatchWait time.Duration // default 20ms
}

func (c Config) withDefaults() Config {
	if c.Durable == "" {
		c.Durable = "archiver"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 20 * time.Millisecond
	}
	return c
}

const (
	// ackWait is how long the server waits for an ack before redelivering,
	// e.g. to another instance when this one died holding a batch.
	ackWait = 30 * time.Second
	// maxAckPending bounds the messages delivered but not yet acked across
	// all instances; far above what they buffer, so it never throttles.
	maxAckPending = 100_000
)

// Archiver is the durable consumer of CHAT_MSG into a history store.
type Archiver struct {
	st       store.HistoryStore
	log      *zap.Logger
	cons     *bus.BatchConsumer
	archived atomic.Uint64
	// batchSeconds times each batch's store write, retries included.
	batchSeconds prometheus.Histogram
}

// New returns an archiver; Run starts it.
func New(js jetstream.JetStream, st store.HistoryStore, log *zap.Logger, cfg Config) *Archiver {
	cfg = cfg.withDefaults()
	a := &Archiver{st: st, log: log, batchSeconds: newBatchSeconds()}
	a.cons = &bus.BatchConsumer{
		JS:     js,
		Stream: bus.StreamMsg,
		Config: jetstream.ConsumerConfig{
			Durable:       cfg.Durable,
			Description:   "Parley archiver: room messages into the history store",
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       ackWait,
			MaxAckPending: maxAckPending,
		},
		BatchSize: cfg.BatchSize,
		BatchWait: cfg.BatchWait,
		Handle:    a.archive,
		Log:       log,
	}
	return a
}

// Archived counts the messages this archiver has written and acked,
// redeliveries included.
func (a *Archiver) Archived() uint64 { return a.archived.Load() }

// Ready reports whether the archiver consumes CHAT_MSG: an error before
// Run has its consumer, and as soon as it stops.
func (a *Archiver) Ready() error {
	if !a.cons.Running() {
		return errors.New("archiver not running")
	}
	return nil
}

// Run archives until ctx is done, then finishes the messages already
// delivered to it and returns nil. It returns an error only when the
// consumer cannot be created at start; later interruptions (a deleted
// consumer, a lost connection) are logged, and it recreates the consumer
// and resubscribes with backoff.
func (a *Archiver) Run(ctx context.Context) error {
	a.log.Info("archiving", zap.String("stream", bus.StreamMsg), zap.String("durable", a.cons.Config.Durable),
		zap.Int("batch_size", a.cons.BatchSize), zap.Duration("batch_wait", a.cons.BatchWait))
	return a.cons.Run(ctx)
}

// archive writes msgs to the store and acks them. Messages that cannot be
// archived at all are terminated so they never block the stream; if ctx
// ends before the write succeeds, the batch is nacked for redelivery.
func (a *Archiver) archive(ctx context.Context, msgs []jetstream.Msg) {
	batch := make([]*pb.ArchivedMessage, 0, len(msgs))
	valid := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		am, err := decode(m)
		if err != nil {
			a.log.Error("terminating a message that is not a room message", zap.String("subject", m.Subject()), zap.Error(err))
			a.settled(m, m.Term())
			continue
		}
		batch = append(batch, am)
		valid = append(valid, m)
	}
	if len(batch) == 0 {
		return
	}
	start := time.Now()
	written := a.write(ctx, batch)
	a.batchSeconds.Observe(time.Since(start).Seconds())
	for _, m := range valid {
		settle := m.Ack
		if !written {
			settle = m.Nak
		}
		a.settled(m, settle())
	}
	if written {
		a.archived.Add(uint64(len(batch)))
	}
}

// settled logs a failed ack, nak or term. A lost ack costs only a harmless
// redelivery, so there is nothing else to do.
func (a *Archiver) settled(m jetstream.Msg, err error) {
	if err != nil {
		a.log.Warn("settling message", zap.String("subject", m.Subject()), zap.Error(err))
	}
}

// write stores batch, retrying with backoff until it succeeds (true) or ctx
// is done (false). The first attempt runs even when ctx is already done, so
// a batch delivered before shutdown is still finished.
func (a *Archiver) write(ctx context.Context, batch []*pb.ArchivedMessage) bool {
	var bo bus.Backoff
	for {
		err := a.st.AppendMessages(context.WithoutCancel(ctx), batch)
		if err == nil {
			return true
		}
		a.log.Warn("history write failed; retrying", zap.Int("messages", len(batch)), zap.Error(err))
		if !bo.Wait(ctx) {
			return false
		}
	}
}

// decode turns a CHAT_MSG message into its archived form.
func decode(m jetstream.Msg) (*pb.ArchivedMessage, error) {
	meta, err := m.Metadata()
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	msg := &pb.Message{}
	if err := proto.Unmarshal(m.Data(), msg); err != nil {
		return nil, fmt.Errorf("decode stream seq %d: %w", meta.Sequence.Stream, err)
	}
	// The body is what history serves; it must name the room whose subject
	// it was stored on, and carry an assigned seq.
	if msg.Room != bus.RoomFromSubject(m.Subject()) || msg.Seq == 0 {
		return nil, fmt.Errorf("stream seq %d: room %q seq %d does not fit its subject", meta.Sequence.Stream, msg.Room, msg.Seq)
	}
	return &pb.ArchivedMessage{Message: msg, StreamSeq: meta.Sequence.Stream}, nil
}
