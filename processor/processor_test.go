package processor

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/sequencer"
	"github.com/parley-chat/parley/internal/store/pebblestore"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

const parts = 4

type env struct {
	t     *testing.T
	nc    *nats.Conn
	js    jetstream.JetStream
	st    store.Store
	sends *sequencer.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	nc, js := bustest.WithStreams(t, parts)
	st, err := pebblestore.Open(t.TempDir(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sends, err := sequencer.NewClient(nc, sequencer.Config{Partitions: parts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sends.Close)
	return &env{t: t, nc: nc, js: js, st: st, sends: sends}
}

func (e *env) room(id string, kind store.RoomKind, members map[string]store.Role) {
	var ms []store.Member
	for u, r := range members {
		ms = append(ms, store.Member{User: u, Role: r})
	}
	if err := e.st.CreateRoom(context.Background(), store.Room{ID: id, Kind: kind}, ms); err != nil {
		e.t.Fatal(err)
	}
}

// run starts a processor and returns a function that stops it.
func (e *env) run() func() {
	_, stop := e.start(Config{})
	return stop
}

// start runs a processor with cfg (the test's partitions, and a short
// lease TTL unless set) on the env's bus and store, and returns it with a
// function that stops it.
func (e *env) start(cfg Config) (*Processor, func()) {
	cfg.Partitions = parts
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	p := New(e.nc, e.js, e.st, zaptest.NewLogger(e.t), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	stop := func() { cancel(); <-done }
	e.t.Cleanup(stop)
	return p, stop
}

// send hands an inbound message to the processors as a gateway would and
// waits for the answer.
func (e *env) send(room, sender, cmid string) *pb.SendResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := e.sends.Do(ctx, &pb.InboundMessage{Room: room, Sender: sender, ClientMsgId: cmid, Body: &pb.Body{Text: "hi"}})
	if err != nil {
		e.t.Fatalf("no result for %s: %v", cmid, err)
	}
	return r
}

// storedSeqs lists the Parley-Seq headers of a room's CHAT_MSG messages.
func (e *env) storedSeqs(room string) []uint64 {
	msgs, err := bus.NextBySubject(context.Background(), e.nc, bus.StreamMsg, bus.MsgSubject(room), 1, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []uint64
	for _, m := range msgs {
		s, _ := strconv.ParseUint(m.Header.Get(bus.HeaderSeq), 10, 64)
		out = append(out, s)
	}
	return out
}

// Another writer appends to a room behind the processor's back; the
// processor's next publish is fenced, it reloads, and seq stays dense.
func TestFencingAfterForeignWrite(t *testing.T) {
	e := newEnv(t)
	e.room("r1", store.RoomGroup, map[string]store.Role{"alice": store.RoleMember})
	e.run()
	if r := e.send("r1", "alice", "a"); r.Seq != 1 || r.Error != nil {
		t.Fatalf("first: %v", r)
	}
	// The foreign writer plays by the rules: it expects stream seq of #1.
	last, err := bus.LastForSubject(context.Background(), e.nc, bus.StreamMsg, bus.MsgSubject("r1"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := proto.Marshal(&pb.Message{Room: "r1", Seq: 2, Sender: "alice", ClientMsgId: "foreign", Body: &pb.Body{Text: "x"}})
	m := nats.NewMsg(bus.MsgSubject("r1"))
	m.Data = raw
	m.Header.Set(bus.HeaderSeq, "2")
	if _, err := e.js.PublishMsg(context.Background(), m, jetstream.WithExpectLastSequencePerSubject(last.Sequence)); err != nil {
		t.Fatal(err)
	}
	if r := e.send("r1", "alice", "b"); r.Seq != 3 || r.Duplicate {
		t.Fatalf("after the foreign write: %v, want seq 3", r)
	}
	if got := e.storedSeqs("r1"); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("stream holds seqs %v", got)
	}
}

// A new processor with empty caches still recognizes a resent id, reloaded
// from CHAT_MSG, and answers with the original seq.
func TestDedupSurvivesProcessorRestart(t *testing.T) {
	e := newEnv(t)
	e.room("r1", store.RoomGroup, map[string]store.Role{"alice": store.RoleMember})
	stop := e.run()
	e.send("r1", "alice", "x")
	if r := e.send("r1", "alice", "y"); r.Seq != 2 {
		t.Fatalf("second message: %v", r)
	}
	stop()
	e.run()
	r := e.send("r1", "alice", "x")
	if r.Seq != 1 || !r.Duplicate {
		t.Fatalf("resend after restart: %v, want duplicate of seq 1", r)
	}
	if r := e.send("r1", "alice", "z"); r.Seq != 3 || r.Duplicate {
		t.Fatalf("next message: %v, want seq 3", r)
	}
}

func TestRejections(t *testing.T) {
	e := newEnv(t)
	e.room("g", store.RoomGroup, map[string]store.Role{"alice": store.RoleMember})
	e.room("ch", store.RoomChannel, map[string]store.Role{"owner": store.RoleOwner, "reader": store.RoleMember})
	e.run()
	cases := []struct {
		room, sender string
		code         pb.ErrorCode
	}{
		{"g", "mallory", pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND},
		{"nope", "alice", pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND},
		{"ch", "reader", pb.ErrorCode_ERROR_CODE_FORBIDDEN},
		{"ch", "owner", 0},
	}
	for _, c := range cases {
		r := e.send(c.room, c.sender, "m-"+c.sender)
		if r.Error.GetCode() != c.code {
			t.Errorf("%s in %s: %v, want %v", c.sender, c.room, r, c.code)
		}
	}
	if got := e.storedSeqs("g"); len(got) != 0 {
		t.Fatalf("rejected messages were stored: %v", got)
	}
}
