// Package bustest starts a real embedded NATS server with JetStream for
// tests, torn down when the test ends.
package bustest

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/natsembed"
)

// Connect starts a server on a random loopback port and connects to it.
func Connect(t testing.TB) *nats.Conn {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Config{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// WithStreams starts a server and creates Parley's streams with the given
// partition count.
func WithStreams(t testing.TB, partitions int) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureStreams(context.Background(), js, bus.StreamConfig{Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}
