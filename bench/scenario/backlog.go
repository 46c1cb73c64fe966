package scenario

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/internal/bus"
)

// backlogStreams hold the work of Parley's consumers: CHAT_MSG the
// archiver's, and CHAT_IN the processor's in Parley versions before sends
// reached the processor over core NATS. CHAT_IN is named here, not through
// internal/bus, so the bench still measures such a server (for comparisons);
// a server without it simply has no backlog there.
var backlogStreams = []string{"CHAT_IN", bus.StreamMsg}

// backlog is the work Parley's consumers have not finished: messages
// pending or unacknowledged on every consumer of whichever backlogStreams
// the server has. Polling, it waits at most limit for the backlog to reach
// zero, so that one run's leftovers do not load the next.
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

// pending is the backlog now, over every one of backlogStreams.
func pending(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var n uint64
	for _, name := range backlogStreams {
		m, err := streamPending(ctx, js, name)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

// streamPending is the backlog of stream name's consumers: none if the
// server has no such stream.
func streamPending(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", name, err)
	}
	var n uint64
	infos := s.ListConsumers(ctx)
	for ci := range infos.Info() {
		n += ci.NumPending + uint64(ci.NumAckPending)
	}
	if err := infos.Err(); err != nil {
		return 0, fmt.Errorf("consumers of %s: %w", name, err)
	}
	return n, nil
}
