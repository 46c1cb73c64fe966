package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/pkg/bus"
)

// backlog is the work Parley's consumers have not finished: messages
// pending or unacknowledged on every consumer of CHAT_IN (the processor)
// and CHAT_MSG (the archiver). Polling, it waits at most limit for the
// backlog to reach zero, so that one run's leftovers do not load the next.
func backlog(ctx context.Context, natsURL string, limit time.Duration) (uint64, error) {
	nc, err := nats.Connect(natsURL, nats.Name("parley-bench-backlog"))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(limit)
	for {
		n, err := pending(ctx, js)
		if err != nil || n == 0 || time.Now().After(deadline) || !load.Sleep(ctx, 500*time.Millisecond) {
			return n, err
		}
	}
}

func pending(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var n uint64
	for _, name := range []string{bus.StreamMsg} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", name, err)
		}
		infos := s.ListConsumers(ctx)
		for ci := range infos.Info() {
			n += ci.NumPending + uint64(ci.NumAckPending)
		}
		if err := infos.Err(); err != nil {
			return 0, fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	return n, nil
}
