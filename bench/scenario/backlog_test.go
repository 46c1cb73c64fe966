package scenario

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
)

// addBacklog creates stream name on subject.> with a durable consumer and
// n messages it has not read.
func addBacklog(t *testing.T, js jetstream.JetStream, name, subject string, n int) {
	t.Helper()
	ctx := context.Background()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := js.Publish(ctx, subject+".x", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBacklogOfTheStreamsThatExist(t *testing.T) {
	nc := bustest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A cluster's list of servers, one of them down.
	url := "nats://127.0.0.1:1," + nc.ConnectedUrl()
	want := func(stage string, n uint64) {
		t.Helper()
		if got, err := backlog(context.Background(), url, 0); err != nil || got != n {
			t.Fatalf("%s: backlog %d, %v; want %d", stage, got, err, n)
		}
	}
	want("no stream", 0)
	addBacklog(t, js, bus.StreamMsg, "chat.msg", 3)
	want("CHAT_MSG only, as without CHAT_IN", 3)
	addBacklog(t, js, "CHAT_IN", "chat.in", 2)
	want("CHAT_IN and CHAT_MSG", 5)
}
