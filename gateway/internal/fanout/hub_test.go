package fanout

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/roomlog"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

const room = "r1"

// memLog is a room log in memory: what CHAT_MSG and the history store hold.
type memLog struct {
	mu   sync.Mutex
	msgs [][]byte // seq i+1
}

func (l *memLog) append(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		l.msgs = append(l.msgs, message(uint64(len(l.msgs)+1), pb.MessageKind_MESSAGE_KIND_TEXT))
	}
}

func (l *memLog) Head(context.Context, string) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.msgs)), nil
}

func (l *memLog) Range(_ context.Context, _ string, from, to uint64) ([]roomlog.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []roomlog.Entry
	for seq := from; seq <= to && seq <= uint64(len(l.msgs)); seq++ {
		out = append(out, roomlog.Entry{Seq: seq, Raw: l.msgs[seq-1]})
	}
	return out, nil
}

func message(seq uint64, kind pb.MessageKind, targets ...string) []byte {
	raw, _ := proto.Marshal(&pb.Message{Room: room, Seq: seq, Kind: kind, TargetUsers: targets})
	return raw
}

// members is a room's member list of a given size.
type members int

func (n members) Members(_ context.Context, _, _ string, limit int) ([]store.Member, error) {
	out := make([]store.Member, min(int(n), limit))
	for i := range out {
		out[i].User = "u" + strconv.Itoa(i)
	}
	return out, nil
}

// member records what a hub pushes to it. With gate set, catch-up pushes
// wait for it to be closed.
type member struct {
	user    string
	gate    chan struct{}
	mu      sync.Mutex
	seqs    []uint64
	signals []*push.Signal
	dropped chan *Hub
}

func newMember(user string) *member { return &member{user: user, dropped: make(chan *Hub, 1)} }

func (m *member) Push(f push.Frame) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch f := f.(type) {
	case *push.Event:
		m.seqs = append(m.seqs, f.Seq)
	case *push.Signal:
		m.signals = append(m.signals, f)
	}
}

func (m *member) PushWait(f push.Frame) bool {
	if m.gate != nil {
		<-m.gate
	}
	m.Push(f)
	return true
}

func (m *member) UserID() string { return m.user }
func (m *member) Dropped(h *Hub) { m.dropped <- h }

func (m *member) got() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seqs)
}

// waitFor waits until m has received exactly from..to.
func (m *member) waitFor(t *testing.T, from, to uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := m.got()
		if uint64(len(got)) >= to-from+1 || time.Now().After(deadline) {
			checkSeqs(t, m.user, got, from, to)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSeqs checks that got is exactly from..to, in order.
func checkSeqs(t *testing.T, who string, got []uint64, from, to uint64) {
	t.Helper()
	var want []uint64
	for s := from; s <= to; s++ {
		want = append(want, s)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s got seqs %v, want %d..%d", who, got, from, to)
	}
}

// newHubs runs hubs on a real NATS server, over log.
func newHubs(t *testing.T, log *memLog, size members) (*Hubs, *nats.Conn) {
	nc := bustest.Connect(t)
	hs := New(nc, log, size, zaptest.NewLogger(t), Config{GatewayID: "gw1", SmallRoom: 10, OnlineInterval: 50 * time.Millisecond})
	hs.Start()
	t.Cleanup(hs.Stop)
	return hs, nc
}

// publishLive publishes seq as the stream's RePublish would, adding it to
// the log first (RePublish follows the store).
func publishLive(t *testing.T, nc *nats.Conn, log *memLog, seq uint64, header nats.Header) {
	t.Helper()
	log.mu.Lock()
	for uint64(len(log.msgs)) < seq {
		log.msgs = append(log.msgs, message(uint64(len(log.msgs)+1), pb.MessageKind_MESSAGE_KIND_TEXT))
	}
	raw := log.msgs[seq-1]
	log.mu.Unlock()
	if header == nil {
		header = nats.Header{}
	}
	header.Set(bus.HeaderSeq, strconv.FormatUint(seq, 10))
	if err := nc.PublishMsg(&nats.Msg{Subject: "room." + room + ".ev", Data: raw, Header: header}); err != nil {
		t.Fatal(err)
	}
}

func acquire(t *testing.T, hs *Hubs) *Hub {
	t.Helper()
	h, err := hs.Acquire(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Release(h) })
	return h
}

// Live events a member missed (core NATS is at most once) are filled from
// the log before the next one, in order; a repeated event is dropped.
func TestHubFillsLiveGapsInOrder(t *testing.T) {
	log := new(memLog)
	log.append(2)
	hs, nc := newHubs(t, log, 2)
	h := acquire(t, hs)
	m := newMember("alice")
	if err := h.Join(context.Background(), m, 1, nil); err != nil {
		t.Fatal(err)
	}
	publishLive(t, nc, log, 3, nil)
	log.append(2)                   // 4 and 5 stored, their live copies lost
	publishLive(t, nc, log, 6, nil) // the hub sees 6 after 3
	publishLive(t, nc, log, 5, nil) // a late copy: delivered already
	publishLive(t, nc, log, 7, nil)
	m.waitFor(t, 3, 7)
	time.Sleep(50 * time.Millisecond)
	checkSeqs(t, "alice", m.got(), 3, 7) // nothing more came
	if got := hs.Deliveries(); got != 5 {
		t.Errorf("deliveries %d, want 5", got)
	}
}

// A member resuming from far back gets every event after its cursor from
// the log, a page at a time, then the live ones, with no gap and no
// duplicate; one resuming from near the head is served from memory.
func TestHubCatchUp(t *testing.T) {
	log := new(memLog)
	const stored = 2*catchUpPage + 17
	log.append(stored)
	hs, nc := newHubs(t, log, 2)
	h := acquire(t, hs)
	far := newMember("far")
	after := uint64(3)
	if err := h.Join(context.Background(), far, 1, &after); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, "far", far.got(), 4, stored)
	publishLive(t, nc, log, stored+1, nil)
	publishLive(t, nc, log, stored+2, nil)
	deadline := time.Now().Add(5 * time.Second)
	for len(far.got()) < stored-3+2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	checkSeqs(t, "far", far.got(), 4, stored+2)

	// The live events are in memory now: a resume from just before them
	// reads nothing from the log.
	log.mu.Lock()
	log.msgs = nil
	log.mu.Unlock()
	near := newMember("near")
	after = stored
	if err := h.Join(context.Background(), near, 2, &after); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, "near", near.got(), stored+1, stored+2)
	if len(near.signals) != 1 {
		t.Fatalf("near got %d signals, want the Subscribed answer", len(near.signals))
	}
}

// A catch-up that reaches back past the log fails rather than leave a gap.
func TestHubCatchUpRefusesAGap(t *testing.T) {
	log := new(memLog)
	log.append(3)
	hs, _ := newHubs(t, log, 2)
	h := acquire(t, hs)
	log.mu.Lock()
	log.msgs = nil // head was read; the messages are gone
	log.mu.Unlock()
	after := uint64(0)
	if err := h.Join(context.Background(), newMember("m"), 1, &after); err == nil {
		t.Fatal("catch-up over a gap succeeded")
	}
}

// A member that reads slowly while it catches up holds up only itself:
// live members get new events meanwhile, and the slow one still gets every
// event once, in order, when it reads again.
func TestHubSlowMemberHoldsUpOnlyItself(t *testing.T) {
	log := new(memLog)
	log.append(10)
	hs, nc := newHubs(t, log, 2)
	h := acquire(t, hs)
	live := newMember("live")
	if err := h.Join(context.Background(), live, 1, nil); err != nil {
		t.Fatal(err)
	}
	// Past the hub's memory (which starts empty), so catch-up reads the log.
	slow := newMember("slow")
	slow.gate = make(chan struct{})
	joined := make(chan error, 1)
	go func() {
		after := uint64(0)
		joined <- h.Join(context.Background(), slow, 2, &after)
	}()
	for seq := uint64(11); seq <= 13; seq++ {
		publishLive(t, nc, log, seq, nil)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(live.got()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	checkSeqs(t, "live", live.got(), 11, 13)
	if got := slow.got(); len(got) != 0 {
		t.Fatalf("the blocked member got %v", got)
	}
	close(slow.gate)
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	publishLive(t, nc, log, 14, nil)
	slow.waitFor(t, 1, 14)
}

// A member a membership event removes gets that event, nothing after, and
// is told to let go of the hub.
func TestHubDropsLeavers(t *testing.T) {
	log := new(memLog)
	hs, nc := newHubs(t, log, 2)
	h := acquire(t, hs)
	bob, carol := newMember("bob"), newMember("carol")
	for i, m := range []*member{bob, carol} {
		if err := h.Join(context.Background(), m, uint64(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	log.mu.Lock()
	log.msgs = append(log.msgs, message(1, pb.MessageKind_MESSAGE_KIND_MEMBER_REMOVED, "bob"))
	log.mu.Unlock()
	publishLive(t, nc, log, 1, nats.Header{bus.HeaderLeaves: []string{"bob"}})
	publishLive(t, nc, log, 2, nil)
	select {
	case got := <-bob.dropped:
		if got != h {
			t.Fatal("dropped from another hub")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the removed member was not dropped")
	}
	carol.waitFor(t, 1, 2)
	checkSeqs(t, "bob", bob.got(), 1, 1)
}

// Gateways sum a large room's online users: each reports its own, and
// members hear the total.
func TestHubOnlineCountsOfLargeRooms(t *testing.T) {
	log := new(memLog)
	hs, nc := newHubs(t, log, 50) // over SmallRoom
	h := acquire(t, hs)
	m := newMember("alice")
	if err := h.Join(context.Background(), m, 1, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hs.Run(ctx)
	// Another gateway reports 4 online, as often as gateways do.
	other, _ := proto.Marshal(&pb.ServerFrame{Kind: &pb.ServerFrame_RoomOnline{RoomOnline: &pb.RoomOnline{Room: room, Online: 4}}})
	go func() {
		for ctx.Err() == nil {
			_ = nc.PublishMsg(&nats.Msg{Subject: bus.RoomSignals(room), Data: other, Header: nats.Header{bus.HeaderGateway: []string{"gw2"}}})
			time.Sleep(20 * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		var last string
		if n := len(m.signals); n > 0 {
			last = strings.ReplaceAll(string(m.signals[n-1].Encoded(jsonCodec)), " ", "")
		}
		m.mu.Unlock()
		if last == fmt.Sprintf(`{"room_online":{"room":%q,"online":"5"}}`, room) {
			return // 4 there and alice here
		}
		if time.Now().After(deadline) {
			t.Fatalf("last signal %s, want an online count of 5", last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var jsonCodec = protocol.ForSubprotocol(protocol.SubprotocolJSON)
