package gateway

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/pkg/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// SignalConfig tunes the ephemeral signals: presence, typing, read
// receipts and online counts.
type SignalConfig struct {
	// SmallRoom is the most members a room may have for its members to
	// follow each other's presence and see read receipts; larger rooms
	// get an online count instead (default 100).
	SmallRoom int
	// OnlineInterval is how often gateways exchange large rooms' online
	// counts (default 10s).
	OnlineInterval time.Duration
	// TypingRate and TypingBurst limit a user's typing frames (default 1
	// per second, bursts of 5); clients resend every 3 s while typing.
	TypingRate  float64
	TypingBurst int
}

func (c SignalConfig) withDefaults() SignalConfig {
	if c.SmallRoom <= 0 {
		c.SmallRoom = 100
	}
	if c.OnlineInterval <= 0 {
		c.OnlineInterval = 10 * time.Second
	}
	if c.TypingRate <= 0 {
		c.TypingRate, c.TypingBurst = 1, 5
	}
	return c
}

// signal is a pushed frame other than a room message: presence, typing,
// receipts, unread counts.
type signal struct {
	f *pb.ServerFrame
	encodings
}

func (sg *signal) frame(s *session) []byte {
	return sg.get(s.codec, func() ([]byte, error) { return s.codec.EncodeServer(sg.f) })
}

// pushSignal queues a signal without blocking.
func (s *session) pushSignal(sg *signal) {
	if f := sg.frame(s); f != nil {
		s.conn.Send(f)
	}
}

// publish sends a frame on a signal subject; headers name its origin.
func (g *Gateway) publish(subject string, f *pb.ServerFrame, header nats.Header) {
	data, err := proto.Marshal(f)
	if err == nil {
		err = g.nc.PublishMsg(&nats.Msg{Subject: subject, Data: data, Header: header})
	}
	if err != nil {
		g.log.Warn("signal not published", zap.String("subject", subject), zap.Error(err))
	}
}

// roomSignals is a hub's part in its room's signals: the room.<room>.sig
// subscription and, for large rooms, the online counts gateways report.
type roomSignals struct {
	large bool // more than SmallRoom members when the hub started

	// Large rooms only, under the hub's mu.
	counts  map[string]gatewayCount // gateway id -> its members online
	total   uint64                  // the count members were last told
	greeted map[*session]struct{}   // members told the current total
}

// gatewayCount is one gateway's latest report of a large room.
type gatewayCount struct {
	online uint64
	at     time.Time
}

// initSignals prepares h for its room's signals, which arrive on the
// hub's subscription. Called from init, under h.mu: signals wait until the
// hub is ready.
func (h *hub) initSignals(ctx context.Context) error {
	_, small, err := h.g.smallRoomMembers(ctx, h.room)
	if err != nil {
		return err
	}
	h.signals = roomSignals{large: !small}
	if !small {
		h.signals.counts = make(map[string]gatewayCount)
		h.signals.greeted = make(map[*session]struct{})
	}
	return nil
}

// stopSignals tells a large room's other gateways that this one has
// nobody online there any more (the hub's subscription has ended).
func (h *hub) stopSignals() {
	if h.signals.large {
		h.reportOnline(0)
	}
}

// onSignal delivers one signal of the room to the local members.
func (h *hub) onSignal(m *nats.Msg) {
	f := new(pb.ServerFrame)
	if err := proto.Unmarshal(m.Data, f); err != nil {
		h.g.log.Error("bad room signal", zap.String("subject", m.Subject), zap.Error(err))
		return
	}
	switch k := f.Kind.(type) {
	case *pb.ServerFrame_Typing:
		h.broadcast(&signal{f: f}, k.Typing.GetUser())
	case *pb.ServerFrame_Read:
		h.broadcast(&signal{f: f}, k.Read.GetUser())
	case *pb.ServerFrame_RoomOnline:
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.signals.large {
			h.signals.counts[m.Header.Get(bus.HeaderGateway)] = gatewayCount{online: k.RoomOnline.GetOnline(), at: time.Now()}
			h.pushOnline()
		}
	}
}

// broadcast pushes sg to every live member except the connections of
// user, who sent it.
func (h *hub) broadcast(sg *signal, user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.members {
		if s.userID() != user {
			s.pushSignal(sg)
		}
	}
}

// runOnlineCounts ticks the large rooms with local members until ctx ends.
func (g *Gateway) runOnlineCounts(ctx context.Context) {
	t := time.NewTicker(g.cfg.Signals.OnlineInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, h := range g.hubs.started() {
				if h.signals.large {
					h.tickOnline()
				}
			}
		}
	}
}

// tickOnline reports the users online here in a large room (distinct
// users with a live subscription), forgets gateways that stopped
// reporting, and tells members who joined since the last change the
// current total.
func (h *hub) tickOnline() {
	h.mu.Lock()
	users := make(map[string]struct{})
	for _, s := range h.members {
		users[s.userID()] = struct{}{}
	}
	stale := time.Now().Add(-3 * h.g.cfg.Signals.OnlineInterval)
	for gw, c := range h.signals.counts {
		if c.at.Before(stale) {
			delete(h.signals.counts, gw)
		}
	}
	h.pushOnline()
	// The total is 0 only until this gateway's own first report comes
	// back: not worth telling.
	if h.signals.total > 0 {
		sg := h.onlineSignal()
		for _, s := range h.members {
			if _, ok := h.signals.greeted[s]; !ok {
				s.pushSignal(sg)
			}
		}
		clear(h.signals.greeted)
		for _, s := range h.members {
			h.signals.greeted[s] = struct{}{}
		}
	}
	h.mu.Unlock()
	h.reportOnline(uint64(len(users)))
}

// pushOnline tells every member a changed total. Under h.mu.
func (h *hub) pushOnline() {
	var total uint64
	for _, c := range h.signals.counts {
		total += c.online
	}
	if total == h.signals.total {
		return
	}
	h.signals.total = total
	sg := h.onlineSignal()
	for _, s := range h.members {
		s.pushSignal(sg)
		h.signals.greeted[s] = struct{}{}
	}
}

func (h *hub) onlineSignal() *signal {
	return &signal{f: &pb.ServerFrame{Kind: &pb.ServerFrame_RoomOnline{RoomOnline: &pb.RoomOnline{Room: h.room, Online: h.signals.total}}}}
}

// reportOnline tells every gateway with members of this large room how
// many are online here.
func (h *hub) reportOnline(online uint64) {
	h.g.publish(bus.RoomSignals(h.room),
		&pb.ServerFrame{Kind: &pb.ServerFrame_RoomOnline{RoomOnline: &pb.RoomOnline{Room: h.room, Online: online}}},
		nats.Header{bus.HeaderGateway: []string{h.g.cfg.ID}})
}

// smallRoomMembers reads a room's members if it has at most SmallRoom of
// them; small is false for larger rooms, whose members are not read.
func (g *Gateway) smallRoomMembers(ctx context.Context, room string) (members []store.Member, small bool, err error) {
	members, err = g.rooms.Members(ctx, room, "", g.cfg.Signals.SmallRoom+1)
	if err != nil || len(members) > g.cfg.Signals.SmallRoom {
		return nil, false, err
	}
	return members, true, nil
}

// smallRoom tells whether room is small, from its local hub if it has one.
func (g *Gateway) smallRoom(ctx context.Context, room string) (bool, error) {
	g.hubs.mu.Lock()
	h := g.hubs.m[room]
	g.hubs.mu.Unlock()
	if h != nil && h.started() {
		return !h.signals.large, nil
	}
	_, small, err := g.smallRoomMembers(ctx, room)
	return small, err
}

// started lists the hubs whose init succeeded.
func (hs *hubs) started() []*hub {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	out := make([]*hub, 0, len(hs.m))
	for _, h := range hs.m {
		if h.started() {
			out = append(out, h)
		}
	}
	return out
}

// started reports whether init has run and succeeded; its fields set by
// init are then safe to read.
func (h *hub) started() bool {
	select {
	case <-h.ready:
		return h.initErr == nil
	default:
		return false
	}
}
