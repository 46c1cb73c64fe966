package gateway

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/pkg/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// recentEvents is how many of a room's latest events a hub keeps, so most
// resumes are served from memory.
const recentEvents = 512

// hub is a gateway's view of one room with local subscribers: one core
// NATS subscription to room.<room>.ev, the highest seq delivered, the latest
// events, and the live members.
//
// Invariant: every live member has received exactly the events 1..head it
// asked for, in order; events reach members only under mu, in seq order.
type hub struct {
	g    *Gateway
	room string

	// ready is closed once init has run; initErr is then final.
	ready   chan struct{}
	initErr error
	refs    int // sessions holding the hub; guarded by hubs.mu
	sub     *nats.Subscription
	signals roomSignals // typing, receipts and online counts (signals.go)

	mu      sync.Mutex
	head    uint64
	recent  []*event   // ascending, contiguous, ending at head
	members []*session // each once: Subscribe leaves the room before joining it
}

// hubs holds the gateway's room hubs; a hub lives while a session holds it.
type hubs struct {
	g  *Gateway
	mu sync.Mutex
	m  map[string]*hub
}

func (hs *hubs) acquire(ctx context.Context, room string) (*hub, error) {
	hs.mu.Lock()
	h, ok := hs.m[room]
	if !ok {
		h = &hub{g: hs.g, room: room, ready: make(chan struct{})}
		hs.m[room] = h
	}
	h.refs++
	hs.mu.Unlock()
	if !ok {
		h.initErr = h.init(ctx)
		close(h.ready)
	}
	<-h.ready
	if h.initErr != nil {
		hs.release(h)
		return nil, h.initErr
	}
	return h, nil
}

func (hs *hubs) release(h *hub) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h.refs--; h.refs > 0 {
		return
	}
	if hs.m[h.room] == h {
		delete(hs.m, h.room)
	}
	if h.sub != nil {
		h.g.subs.unsubscribe(h.sub)
		h.stopSignals()
	}
}

func (hs *hubs) count() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.m)
}

// init subscribes first and reads the head second, under mu, so no event
// can fall between the two: anything newer than head arrives on the
// subscription once mu is released.
func (h *hub) init(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub, err := h.g.subs.subscribe(bus.RoomSubjects(h.room), h.onRoom)
	if err != nil {
		return err
	}
	head, err := h.g.roomLog.Head(ctx, h.room)
	if err == nil {
		err = h.initSignals(ctx)
	}
	if err != nil {
		h.g.subs.unsubscribe(sub)
		return err
	}
	h.sub, h.head = sub, head
	return nil
}

// onRoom takes a message of the room's one subscription: a signal, or a
// stored event.
func (h *hub) onRoom(m *nats.Msg) {
	if bus.IsRoomSignal(m.Subject) {
		h.onSignal(m)
		return
	}
	h.onLive(m)
}

// onLive handles one republished room message.
func (h *hub) onLive(m *nats.Msg) {
	seq, err := strconv.ParseUint(m.Header.Get(bus.HeaderSeq), 10, 64)
	if err != nil {
		h.g.log.Error("room event without seq", zap.String("subject", m.Subject))
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
		ctx, cancel := context.WithTimeout(context.Background(), h.g.cfg.RequestTimeout)
		evs, err := h.g.fetchRange(ctx, h.room, h.head+1, seq-1)
		cancel()
		if err != nil || uint64(len(evs)) != seq-1-h.head {
			h.g.log.Error("live gap not filled", zap.String("room", h.room), zap.Uint64("from", h.head+1), zap.Uint64("to", seq-1), zap.Int("got", len(evs)), zap.Error(err))
		}
		for _, ev := range evs {
			h.deliver(ev, leaversOf(ev.raw))
		}
	}
	h.deliver(&event{seq: seq, raw: m.Data}, m.Header.Values(bus.HeaderLeaves))
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
func (h *hub) deliver(ev *event, leavers []string) {
	h.head = ev.seq
	h.recent = append(h.recent, ev)
	if len(h.recent) > 2*recentEvents {
		h.recent = append(h.recent[:0:0], h.recent[len(h.recent)-recentEvents:]...)
	}
	for _, s := range h.members {
		s.pushEvent(ev)
	}
	h.g.metrics.deliveries.Add(int64(len(h.members)))
	if len(leavers) == 0 {
		return
	}
	h.members = slices.DeleteFunc(h.members, func(s *session) bool {
		if !slices.Contains(leavers, s.userID()) {
			return false
		}
		// Not under mu: releasing the hub takes the hubs lock.
		go s.dropHub(h)
		return true
	})
}

// join answers Subscribe: it replies with the head, delivers every event
// after *after (from memory, then storage) and makes s a live member with
// no gap and no duplicate. With after nil, delivery starts after the head.
func (h *hub) join(ctx context.Context, s *session, reqID uint64, after *uint64) error {
	h.mu.Lock()
	s.send(&pb.ServerFrame{Id: reqID, Kind: &pb.ServerFrame_Subscribed{Subscribed: &pb.Subscribed{Room: h.room, HeadSeq: h.head}}})
	if after == nil {
		h.members = append(h.members, s)
		h.mu.Unlock()
		return nil
	}
	cursor := *after
	for {
		// Under mu: catch up from memory if it reaches back far enough.
		if cursor >= h.head || (len(h.recent) > 0 && h.recent[0].seq <= cursor+1) {
			for _, ev := range eventsAfter(h.recent, cursor) {
				s.pushEvent(ev)
			}
			h.members = append(h.members, s)
			h.mu.Unlock()
			return nil
		}
		target := min(h.head, cursor+catchUpPage)
		h.mu.Unlock()
		evs, err := h.g.fetchRange(ctx, h.room, cursor+1, target)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return fmt.Errorf("room %s: messages %d..%d are neither in CHAT_MSG nor in history", h.room, cursor+1, target)
		}
		for _, ev := range evs {
			if !s.catchUp(ev) {
				return nil // the connection is closing
			}
		}
		cursor = evs[len(evs)-1].seq
		h.mu.Lock()
	}
}

func (h *hub) leave(s *session) {
	h.mu.Lock()
	h.members = without(h.members, s)
	h.mu.Unlock()
}
