package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// BatchConsumer runs a durable pull consumer and hands its messages to
// Handle in batches: a batch is cut when it holds BatchSize messages or
// BatchWait after its first one arrived. Handle settles (acks, naks) the
// messages itself. Instances sharing a durable name share the work.
//
// Run survives a lost connection or a deleted consumer: it recreates the
// consumer and resubscribes with backoff. When its context ends, the
// messages already delivered are still handed to Handle (drained), so
// they do not wait out their ack wait.
type BatchConsumer struct {
	JS     jetstream.JetStream
	Stream string
	Config jetstream.ConsumerConfig // Durable must be set
	// BatchSize caps a batch; two batches are pulled ahead, so the next
	// one fills while Handle works on this one.
	BatchSize int
	BatchWait time.Duration
	Handle    func(ctx context.Context, batch []jetstream.Msg)
	Log       *zap.Logger

	running atomic.Bool
}

// Running reports whether the consumer exists and Run has not stopped.
func (c *BatchConsumer) Running() bool { return c.running.Load() }

// Run consumes until ctx is done, then returns nil. It returns an error
// only when the consumer cannot be created at start.
func (c *BatchConsumer) Run(ctx context.Context) error {
	cons, err := c.create(ctx)
	if err != nil {
		return err
	}
	c.running.Store(true)
	stopping := context.AfterFunc(ctx, func() { c.running.Store(false) })
	defer stopping()
	var bo Backoff
	for {
		err := c.consume(ctx, cons)
		if ctx.Err() != nil {
			return nil
		}
		c.Log.Warn("consuming interrupted; resubscribing", zap.String("durable", c.Config.Durable), zap.Error(err))
		if !bo.Wait(ctx) {
			return nil
		}
		// On failure keep the old handle: resubscribing with it fails fast
		// if it is gone, and the next round tries again.
		if next, err := c.create(ctx); err != nil {
			c.Log.Warn("recreating consumer", zap.String("durable", c.Config.Durable), zap.Error(err))
		} else {
			cons = next
		}
	}
}

// create makes the durable, or updates it to this configuration.
func (c *BatchConsumer) create(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := c.JS.CreateOrUpdateConsumer(ctx, c.Stream, c.Config)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", c.Config.Durable, c.Stream, err)
	}
	return cons, nil
}

// pullExpiry bounds one pull request; heartbeats come every half of it.
// A pull lost with a paused or failed server is noticed by its missing
// heartbeats after about this long (30 s by default), so the consumer
// is back to work within seconds of the server returning.
const pullExpiry = 5 * time.Second

// consume hands batches from one pull subscription to Handle until the
// subscription ends. When ctx is done the subscription is drained.
func (c *BatchConsumer) consume(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(2*c.BatchSize), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer it.Stop()
	stopDrain := context.AfterFunc(ctx, it.Drain)
	defer stopDrain()
	for {
		batch, err := c.gather(it)
		if len(batch) > 0 {
			c.Handle(ctx, batch)
		}
		if err != nil {
			return err
		}
	}
}

// gather blocks for a first message, then takes more until the batch is
// full or BatchWait has passed. It returns what it has with any error.
func (c *BatchConsumer) gather(it jetstream.MessagesContext) ([]jetstream.Msg, error) {
	m, err := it.Next()
	if err != nil {
		return nil, err
	}
	batch := []jetstream.Msg{m}
	deadline := time.Now().Add(c.BatchWait)
	for len(batch) < c.BatchSize {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		m, err := it.Next(jetstream.NextMaxWait(wait))
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			return batch, err
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// Backoff spaces retries: 100ms, doubling up to 5s.
type Backoff struct{ d time.Duration }

// Wait sleeps for the next interval; false if ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool {
	b.d = min(max(2*b.d, 100*time.Millisecond), 5*time.Second)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Lag is how far the durable is behind its stream: the messages not yet
// acked (pending delivery or delivered and unacked) and the age of the
// oldest of them (zero when none).
func (c *BatchConsumer) Lag(ctx context.Context) (messages uint64, age time.Duration, err error) {
	cons, err := c.JS.Consumer(ctx, c.Stream, c.Config.Durable)
	if err != nil {
		return 0, 0, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	messages = info.NumPending + uint64(info.NumAckPending)
	if messages == 0 {
		return 0, 0, nil
	}
	stream, err := c.JS.Stream(ctx, c.Stream)
	if err != nil {
		return messages, 0, err
	}
	// The oldest unacked message is the first after the ack floor that
	// the stream still has (and the consumer takes).
	oldest, err := stream.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(cmp.Or(c.Config.FilterSubject, ">")))
	if err != nil {
		return messages, 0, err
	}
	return messages, time.Since(oldest.Time), nil
}
