package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
)

// A BatchConsumer hands the stream's messages over in batches, and its
// lag counts what is not acked yet and how old the oldest of it is.
func TestBatchConsumerLag(t *testing.T) {
	_, js := bustest.WithStreams(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, room := range []string{"a", "b", "a"} {
		if _, err := js.Publish(ctx, bus.MsgSubject(room), []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	batches := make(chan []jetstream.Msg)
	c := &bus.BatchConsumer{
		JS: js, Stream: bus.StreamMsg, Log: zap.NewNop(),
		Config:    jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy},
		BatchSize: 10, BatchWait: 50 * time.Millisecond,
		Handle: func(_ context.Context, b []jetstream.Msg) { batches <- b },
	}
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()

	batch := <-batches // held, unacked
	if len(batch) != 3 {
		t.Fatalf("batch of %d messages, want 3", len(batch))
	}
	time.Sleep(100 * time.Millisecond)
	msgs, age, err := c.Lag(ctx)
	if err != nil || msgs != 3 || age < 100*time.Millisecond {
		t.Fatalf("lag = %d messages, %v, %v; want 3, ≥100ms", msgs, age, err)
	}
	for _, m := range batch[:2] {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if msgs, _, err := c.Lag(ctx); err != nil || msgs != 1 {
		t.Fatalf("lag = %d messages, %v; want 1", msgs, err)
	}
	if err := batch[2].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if msgs, age, err := c.Lag(ctx); err != nil || msgs != 0 || age != 0 {
		t.Fatalf("lag = %d messages, %v, %v; want 0, 0", msgs, age, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
