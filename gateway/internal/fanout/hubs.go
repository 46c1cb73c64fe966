// Package fanout delivers rooms' messages and signals to the connections
// on this gateway that subscribed to them: one Hub per room with local
// subscribers, one core NATS subscription per hub, whatever the number of
// members.
//
// Invariants: every live member of a hub gets exactly the events 1..head it
// asked for, in seq order, each once: a missed live event (core NATS is at
// most once) is filled from the room log before anything after it, and a
// catch-up joins the live stream with no gap and no duplicate. One slow
// member never holds up the others: pushes never block (a full queue
// closes that connection), and only catch-up waits, for its own reader.
// Large rooms (more than SmallRoom members) get online counts summed over
// gateways instead of per-member presence and receipts.
package fanout

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/internal/ops"
)

// Hubs holds the gateway's room hubs; a hub lives while a member holds it.
type Hubs struct {
	deps
	nc *nats.Conn

	mu sync.Mutex
	m  map[string]*Hub
}

// New makes the hubs; Start must run before the first Acquire.
func New(nc *nats.Conn, roomLog RoomLog, members Members, log *zap.Logger, cfg Config) *Hubs {
	return &Hubs{
		deps: deps{cfg: cfg.WithDefaults(), roomLog: roomLog, members: members, pub: push.Publisher{NC: nc, Log: log}, log: log,
			storedToLive: ops.Latency("gateway_stored_to_live_seconds", "Time from a message's append to CHAT_MSG to its arrival at this gateway's room hub, which queues it to the members (NATS server clocks).")},
		nc: nc, m: make(map[string]*Hub),
	}
}

// Start runs the subscriptions' handlers; Stop ends them.
func (hs *Hubs) Start() { hs.subs = newSubscriptions(hs.nc) }

// Stop ends the subscriptions' handlers; what is still queued is dropped.
func (hs *Hubs) Stop() {
	if hs.subs != nil {
		hs.subs.stop()
	}
}

// Acquire returns room's hub, subscribed and with its head read; Release
// gives it back.
func (hs *Hubs) Acquire(ctx context.Context, room string) (*Hub, error) {
	hs.mu.Lock()
	h, ok := hs.m[room]
	if !ok {
		h = &Hub{d: &hs.deps, room: room, ready: make(chan struct{})}
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
		hs.Release(h)
		return nil, h.initErr
	}
	return h, nil
}

// Release gives back a hub from Acquire; the last release ends its
// subscription.
func (hs *Hubs) Release(h *Hub) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h.refs--; h.refs > 0 {
		return
	}
	if hs.m[h.room] == h {
		delete(hs.m, h.room)
	}
	if h.sub != nil {
		hs.subs.unsubscribe(h.sub)
		h.stop()
	}
}

// Count is the number of rooms with local subscribers.
func (hs *Hubs) Count() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.m)
}

// DeliveryLatency is the histogram of stored-to-live times.
func (hs *Hubs) DeliveryLatency() prometheus.Collector { return hs.storedToLive }

// Deliveries counts the message events queued to members.
func (hs *Hubs) Deliveries() int64 { return hs.deliveries.Load() }

// SmallRoom tells whether room is small, from its local hub if it has one.
func (hs *Hubs) SmallRoom(ctx context.Context, room string) (bool, error) {
	hs.mu.Lock()
	h := hs.m[room]
	hs.mu.Unlock()
	if h != nil && h.started() {
		return !h.large, nil
	}
	_, small, err := hs.deps.SmallRoomMembers(ctx, room)
	return small, err
}

// Run ticks the online counts of the large rooms with local members until
// ctx ends.
func (hs *Hubs) Run(ctx context.Context) {
	t := time.NewTicker(hs.cfg.OnlineInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, h := range hs.started() {
				if h.large {
					h.tickOnline()
				}
			}
		}
	}
}

// started lists the hubs whose init succeeded.
func (hs *Hubs) started() []*Hub {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	out := make([]*Hub, 0, len(hs.m))
	for _, h := range hs.m {
		if h.started() {
			out = append(out, h)
		}
	}
	return out
}
