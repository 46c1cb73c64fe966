package fanout

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/internal/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Member is a live subscriber of a room: a session.
type Member interface {
	push.Receiver
	// PushWait queues f, waiting for queue space; false means the
	// connection is closing. Only catch-up uses it, so only the reading
	// client is slowed down by its own backlog.
	PushWait(f push.Frame) bool
	UserID() string
	// Dropped tells the member it left the room (it was removed, or left
	// from another device): it must stop holding h and Release it. Called
	// on a goroutine of its own.
	Dropped(h *Hub)
}

// recentEvents is how many of a room's latest events a hub keeps, so most
// resumes are served from memory.
const recentEvents = 512

// catchUpPage bounds one room log read during catch-up.
const catchUpPage = 500

// Hub is a gateway's view of one room with local subscribers: one core
// NATS subscription to the room's events and signals, the highest seq
// delivered, the latest events, and the live members.
//
// Invariant: every live member has received exactly the events 1..head it
// asked for, in order; events reach members only under mu, in seq order.
type Hub struct {
	d    *deps
	room string

	// ready is closed once init has run; initErr is then final.
	ready   chan struct{}
	initErr error
	refs    int // members holding the hub; guarded by Hubs.mu
	sub     *nats.Subscription
	large   bool // more than SmallRoom members when the hub started; set by init

	mu      sync.Mutex
	head    uint64
	recent  []*push.Event // ascending, contiguous, ending at head
	members []Member      // each once: a member leaves before joining again

	// Large rooms only, under mu.
	counts  map[string]gatewayCount // gateway id -> its members online
	total   uint64                  // the count members were last told
	greeted map[Member]struct{}     // members told the current total
}

// gatewayCount is one gateway's latest report of a large room.
type gatewayCount struct {
	online uint64
	at     time.Time
}

// Room is the hub's room id.
func (h *Hub) Room() string { return h.room }

// init subscribes first and reads the head second, under mu, so no event
// can fall between the two: anything newer than head arrives on the
// subscription once mu is released. Signals wait until the hub is ready.
func (h *Hub) init(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub, err := h.d.subs.subscribe(bus.RoomSubjects(h.room), h.onRoom)
	if err != nil {
		return err
	}
	head, err := h.d.roomLog.Head(ctx, h.room)
	var small bool
	if err == nil {
		_, small, err = h.d.SmallRoomMembers(ctx, h.room)
	}
	if err != nil {
		h.d.subs.unsubscribe(sub)
		return err
	}
	h.sub, h.head, h.large = sub, head, !small
	if h.large {
		h.counts = make(map[string]gatewayCount)
		h.greeted = make(map[Member]struct{})
	}
	return nil
}

// started reports whether init has run and succeeded; the fields it sets
// are then safe to read.
func (h *Hub) started() bool {
	select {
	case <-h.ready:
		return h.initErr == nil
	default:
		return false
	}
}

// stop tells a large room's other gateways that this one has nobody
// online there any more (the hub's subscription has ended).
func (h *Hub) stop() {
	if h.large {
		h.reportOnline(0)
	}
}

// onRoom takes a message of the room's one subscription: a signal, or a
// stored event.
func (h *Hub) onRoom(m *nats.Msg) {
	if bus.IsRoomSignal(m.Subject) {
		h.onSignal(m)
		return
	}
	h.onLive(m)
}

// onLive handles one republished room message.
func (h *Hub) onLive(m *nats.Msg) {
	seq, err := strconv.ParseUint(m.Header.Get(bus.HeaderSeq), 10, 64)
	if err != nil {
		h.d.log.Error("room event without seq", zap.String("subject", m.Subject))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if seq <= h.head {
		return // already delivered (filled from a gap before)
	}
	if seq > h.head+1 {
		// A missed event (core NATS is at-most-once): fill from storage
		// before going on, so members never see a hole.
		ctx, cancel := context.WithTimeout(context.Background(), h.d.cfg.RequestTimeout)
		evs, err := h.fetch(ctx, h.head+1, seq-1)
		cancel()
		if err != nil || uint64(len(evs)) != seq-1-h.head {
			h.d.log.Error("live gap not filled", zap.String("room", h.room), zap.Uint64("from", h.head+1), zap.Uint64("to", seq-1), zap.Int("got", len(evs)), zap.Error(err))
		}
		for _, ev := range evs {
			h.deliver(ev, leaversOf(ev.Raw))
		}
	}
	h.deliver(&push.Event{Seq: seq, Raw: m.Data}, m.Header.Values(bus.HeaderLeaves))
	if stored, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer)); err == nil {
		h.d.storedToLive.Observe(time.Since(stored).Seconds())
	}
}

// fetch reads from..to of the room's log as events.
func (h *Hub) fetch(ctx context.Context, from, to uint64) ([]*push.Event, error) {
	entries, err := h.d.roomLog.Range(ctx, h.room, from, to)
	if err != nil {
		return nil, err
	}
	evs := make([]*push.Event, len(entries))
	for i, e := range entries {
		evs[i] = &push.Event{Seq: e.Seq, Raw: e.Raw}
	}
	return evs, nil
}

// leaversOf returns the users a stored membership event removes; it decodes
// only events read back from storage, which carry no headers.
func leaversOf(raw []byte) []string {
	m := new(pb.Message)
	if proto.Unmarshal(raw, m) != nil {
		return nil
	}
	if m.Kind == pb.MessageKind_MESSAGE_KIND_MEMBER_LEFT || m.Kind == pb.MessageKind_MESSAGE_KIND_MEMBER_REMOVED {
		return m.TargetUsers
	}
	return nil
}

// deliver appends ev at head+1 and pushes it to every live member. Members
// in leavers get this event (they see themselves leave) and nothing after.
// Under mu.
func (h *Hub) deliver(ev *push.Event, leavers []string) {
	h.head = ev.Seq
	h.recent = append(h.recent, ev)
	if len(h.recent) > 2*recentEvents {
		h.recent = append(h.recent[:0:0], h.recent[len(h.recent)-recentEvents:]...)
	}
	for _, m := range h.members {
		m.Push(ev)
	}
	h.d.deliveries.Add(int64(len(h.members)))
	if len(leavers) == 0 {
		return
	}
	h.members = slices.DeleteFunc(h.members, func(m Member) bool {
		if !slices.Contains(leavers, m.UserID()) {
			return false
		}
		// Not under mu: releasing the hub takes the hubs lock.
		go m.Dropped(h)
		return true
	})
}

// eventsAfter returns the events of evs with seq > after.
func eventsAfter(evs []*push.Event, after uint64) []*push.Event {
	for i, ev := range evs {
		if ev.Seq > after {
			return evs[i:]
		}
	}
	return nil
}

// Join answers a Subscribe request reqID: it pushes Subscribed with the
// head, delivers every event after *after (from memory, then the room
// log) and makes m a live member with no gap and no duplicate. With after
// nil, delivery starts after the head. An error means a gap it could not
// fill; m is then not a member.
func (h *Hub) Join(ctx context.Context, m Member, reqID uint64, after *uint64) error {
	h.mu.Lock()
	m.Push(push.NewSignal(&pb.ServerFrame{Id: reqID, Kind: &pb.ServerFrame_Subscribed{Subscribed: &pb.Subscribed{Room: h.room, HeadSeq: h.head}}}))
	if after == nil {
		h.members = append(h.members, m)
		h.mu.Unlock()
		return nil
	}
	cursor := *after
	for {
		// Under mu: catch up from memory if it reaches back far enough.
		if cursor >= h.head || (len(h.recent) > 0 && h.recent[0].Seq <= cursor+1) {
			for _, ev := range eventsAfter(h.recent, cursor) {
				m.Push(ev)
			}
			h.members = append(h.members, m)
			h.mu.Unlock()
			return nil
		}
		target := min(h.head, cursor+catchUpPage)
		h.mu.Unlock()
		evs, err := h.fetch(ctx, cursor+1, target)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return fmt.Errorf("room %s: messages %d..%d are neither in CHAT_MSG nor in history", h.room, cursor+1, target)
		}
		for _, ev := range evs {
			if !m.PushWait(ev) {
				return nil // the connection is closing
			}
		}
		cursor = evs[len(evs)-1].Seq
		h.mu.Lock()
	}
}

// Leave ends m's live membership.
func (h *Hub) Leave(m Member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := slices.Index(h.members, m); i >= 0 {
		h.members = slices.Delete(h.members, i, i+1)
	}
	delete(h.greeted, m)
}

// onSignal delivers one signal of the room to the local members.
func (h *Hub) onSignal(m *nats.Msg) {
	f := new(pb.ServerFrame)
	if err := proto.Unmarshal(m.Data, f); err != nil {
		h.d.log.Error("bad room signal", zap.String("subject", m.Subject), zap.Error(err))
		return
	}
	switch k := f.Kind.(type) {
	case *pb.ServerFrame_Typing:
		h.broadcast(push.NewSignal(f), k.Typing.GetUser())
	case *pb.ServerFrame_Read:
		h.broadcast(push.NewSignal(f), k.Read.GetUser())
	case *pb.ServerFrame_RoomOnline:
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.large {
			h.counts[m.Header.Get(bus.HeaderGateway)] = gatewayCount{online: k.RoomOnline.GetOnline(), at: time.Now()}
			h.pushOnline()
		}
	}
}

// broadcast pushes sg to every live member except the connections of
// user, who sent it.
func (h *Hub) broadcast(sg *push.Signal, user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.members {
		if m.UserID() != user {
			m.Push(sg)
		}
	}
}

// tickOnline reports the users online here in a large room (distinct
// users with a live subscription), forgets gateways that stopped
// reporting, and tells members who joined since the last change the
// current total.
func (h *Hub) tickOnline() {
	h.mu.Lock()
	users := make(map[string]struct{})
	for _, m := range h.members {
		users[m.UserID()] = struct{}{}
	}
	stale := time.Now().Add(-3 * h.d.cfg.OnlineInterval)
	for gw, c := range h.counts {
		if c.at.Before(stale) {
			delete(h.counts, gw)
		}
	}
	h.pushOnline()
	// The total is 0 only until this gateway's own first report comes
	// back: not worth telling.
	if h.total > 0 {
		sg := h.onlineSignal()
		for _, m := range h.members {
			if _, ok := h.greeted[m]; !ok {
				m.Push(sg)
			}
		}
		clear(h.greeted)
		for _, m := range h.members {
			h.greeted[m] = struct{}{}
		}
	}
	h.mu.Unlock()
	h.reportOnline(uint64(len(users)))
}

// pushOnline tells every member a changed total. Under mu.
func (h *Hub) pushOnline() {
	var total uint64
	for _, c := range h.counts {
		total += c.online
	}
	if total == h.total {
		return
	}
	h.total = total
	sg := h.onlineSignal()
	for _, m := range h.members {
		m.Push(sg)
		h.greeted[m] = struct{}{}
	}
}

func (h *Hub) onlineSignal() *push.Signal {
	return push.NewSignal(&pb.ServerFrame{Kind: &pb.ServerFrame_RoomOnline{RoomOnline: &pb.RoomOnline{Room: h.room, Online: h.total}}})
}

// reportOnline tells every gateway with members of this large room how
// many are online here.
func (h *Hub) reportOnline(online uint64) {
	h.d.pub.Publish(bus.RoomSignals(h.room),
		&pb.ServerFrame{Kind: &pb.ServerFrame_RoomOnline{RoomOnline: &pb.RoomOnline{Room: h.room, Online: online}}},
		nats.Header{bus.HeaderGateway: []string{h.d.cfg.GatewayID}})
}
