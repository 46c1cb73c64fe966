package sequencer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

const parts = 4

func newClient(t *testing.T, nc *nats.Conn, cfg Config) *Client {
	t.Helper()
	cfg.Partitions = parts
	c, err := NewClient(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// answerAll plays a processor holding every partition: it answers each
// send with seq n, dropping the first `drop` requests unanswered.
func answerAll(t *testing.T, nc *nats.Conn, drop int64) *atomic.Int64 {
	t.Helper()
	var got atomic.Int64
	sub, err := nc.Subscribe("parley.send.*.*", func(m *nats.Msg) {
		n := got.Add(1)
		if n <= drop {
			return
		}
		in := new(pb.InboundMessage)
		_ = proto.Unmarshal(m.Data, in)
		data, _ := proto.Marshal(&pb.SendResult{Room: in.Room, ClientMsgId: in.ClientMsgId, Seq: uint64(n)})
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return &got
}

func send(t *testing.T, c *Client, room string) *pb.SendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.Do(ctx, &pb.InboundMessage{Room: room, Sender: "alice", ClientMsgId: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// With no processor subscribed, the client retries on NATS's no-responders
// status until one appears, and the send then succeeds.
func TestRetriesUntilAProcessorHoldsThePartition(t *testing.T) {
	nc := bustest.Connect(t)
	c := newClient(t, nc, Config{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		answerAll(t, nc, 0)
	}()
	if r := send(t, c, "r1"); r.Error != nil || r.Seq != 1 {
		t.Fatalf("send: %v", r)
	}
	if c.Resends() == 0 {
		t.Error("no resend counted")
	}
}

// An answer that never comes (a processor died holding the request) is
// made up for by resending after the attempt timeout.
func TestResendsAfterALostAnswer(t *testing.T) {
	nc := bustest.Connect(t)
	c := newClient(t, nc, Config{AttemptTimeout: 200 * time.Millisecond})
	got := answerAll(t, nc, 1)
	if r := send(t, c, "r1"); r.Error != nil || r.Seq != 2 || got.Load() != 2 {
		t.Fatalf("send: %v after %d attempts", r, got.Load())
	}
	if n := c.Resends(); n != 1 {
		t.Errorf("Resends() = %d, want 1", n)
	}
}

// Past the deadline the send is answered UNAVAILABLE; past MaxPending,
// OVERLOADED with a retry-after, at once.
func TestDeadlineAndOverload(t *testing.T) {
	nc := bustest.Connect(t)
	c := newClient(t, nc, Config{Deadline: 300 * time.Millisecond, MaxPending: 1})
	if _, err := nc.Subscribe(bus.SendSubject("r1", parts), func(*nats.Msg) {}); err != nil {
		t.Fatal(err) // a processor that never answers
	}
	first := make(chan *pb.SendResult, 1)
	c.Send(&pb.InboundMessage{Room: "r1", ClientMsgId: "a"}, func(r *pb.SendResult) { first <- r })
	r := send(t, c, "r1")
	if r.Error.GetCode() != pb.ErrorCode_ERROR_CODE_OVERLOADED || r.Error.GetRetryAfterMs() == 0 {
		t.Fatalf("second send with one pending allowed: %v, want OVERLOADED with a retry-after", r)
	}
	select {
	case r := <-first:
		if r.Error.GetCode() != pb.ErrorCode_ERROR_CODE_UNAVAILABLE {
			t.Fatalf("unanswered send: %v, want UNAVAILABLE", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an unanswered send was never failed")
	}
}
