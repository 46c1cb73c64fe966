package processor

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/sequencer"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// partition serves the sends of one partition while this processor holds
// its lease.
type partition struct {
	p   *Processor
	id  int
	sub *nats.Subscription

	mu      sync.Mutex
	rooms   map[string]*room
	stopped bool           // no more actors start
	actors  sync.WaitGroup // one per room with work in its queue
}

// queued is a send waiting in its room's queue, with when it arrived.
type queued struct {
	m  *nats.Msg
	at time.Time
}

// room is a room's queue and cached state within a partition.
type room struct {
	id string
	// Guarded by partition.mu:
	queue    []queued
	busy     bool // an actor is working through the queue
	lastUsed time.Time
	// Owned by the room's actor: nil until loaded, and again whenever it
	// may be stale (after fencing).
	state *roomState
}

func newPartition(p *Processor, id int) *partition {
	return &partition{p: p, id: id, rooms: make(map[string]*room)}
}

// subscribe starts receiving the partition's sends.
func (pt *partition) subscribe() error {
	sub, err := pt.p.nc.Subscribe(bus.SendPartition(pt.id), pt.onSend)
	if err != nil {
		return err
	}
	// MaxQueued bounds the work; the subscription itself must not drop.
	_ = sub.SetPendingLimits(-1, 512<<20)
	pt.sub = sub
	return nil
}

// stop drains the subscription (the sends already delivered are queued),
// then waits until every room's queue is answered.
func (pt *partition) stop() {
	if err := pt.sub.Drain(); err == nil {
		deadline := time.Now().Add(5 * time.Second)
		for pt.sub.IsValid() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	_ = pt.sub.Unsubscribe()
	pt.mu.Lock()
	pt.stopped = true
	pt.mu.Unlock()
	pt.actors.Wait()
}

// onSend queues a send on its room, starting the room's actor if it is
// idle. Past MaxQueued the send is answered OVERLOADED at once: nothing of
// it is kept, and the sender retries with the same client message id.
func (pt *partition) onSend(m *nats.Msg) {
	if pt.p.queued.Add(1) > int64(pt.p.cfg.MaxQueued) {
		pt.p.queued.Add(-1)
		pt.p.stats.Overloaded.Add(1)
		e := protocol.Reject(pb.ErrorCode_ERROR_CODE_OVERLOADED, "the processor has too many messages waiting; retry with the same client_msg_id")
		e.RetryAfter = pt.p.cfg.OverloadRetry
		pt.answer(m, &pb.SendResult{Room: bus.RoomFromSubject(m.Subject), Error: e.Proto()})
		return
	}
	id := bus.RoomFromSubject(m.Subject)
	pt.mu.Lock()
	if pt.stopped {
		// Late delivery after a drain that timed out: unanswered, the
		// gateway resends it to the partition's next holder.
		pt.mu.Unlock()
		pt.p.queued.Add(-1)
		return
	}
	r := pt.rooms[id]
	if r == nil {
		r = &room{id: id}
		pt.rooms[id] = r
	}
	r.queue = append(r.queue, queued{m, time.Now()})
	start := !r.busy
	if start {
		r.busy = true
		pt.actors.Add(1)
	}
	pt.mu.Unlock()
	if start {
		pt.p.workers.run(func() { pt.work(r) })
	}
}

// work answers a room's queue in order until it is empty.
func (pt *partition) work(r *room) {
	defer pt.actors.Done()
	for {
		pt.mu.Lock()
		if len(r.queue) == 0 {
			r.busy, r.queue, r.lastUsed = false, nil, time.Now()
			pt.evictIdle()
			pt.mu.Unlock()
			return
		}
		q := r.queue[0]
		r.queue[0] = queued{}
		r.queue = r.queue[1:]
		pt.mu.Unlock()
		pt.answer(q.m, pt.handle(r, q.m))
		pt.p.queued.Add(-1)
		pt.p.sendSeconds.Observe(time.Since(q.at).Seconds())
	}
}

// evictIdle drops idle rooms while the partition keeps more than its
// share of Config.Rooms; map order makes the choice random. Under mu.
func (pt *partition) evictIdle() {
	over := len(pt.rooms) - max(16, pt.p.cfg.Rooms/pt.p.cfg.Partitions)
	for id, r := range pt.rooms {
		if over <= 0 {
			return
		}
		if !r.busy {
			delete(pt.rooms, id)
			over--
		}
	}
}

// handle decides one send and returns its answer.
func (pt *partition) handle(r *room, m *nats.Msg) *pb.SendResult {
	in := new(pb.InboundMessage)
	if err := proto.Unmarshal(m.Data, in); err != nil || in.Room != r.id {
		pt.p.log.Error("undecodable send", zap.String("subject", m.Subject), zap.Error(err))
		pt.p.stats.Rejected.Add(1)
		return sequencer.ErrorResult(in, protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "undecodable message for room %s", r.id))
	}
	return pt.decide(r, in)
}

// answer sends a result to the gateway waiting for it. A lost answer costs
// a retry, which dedup answers with the same seq.
func (pt *partition) answer(m *nats.Msg, res *pb.SendResult) {
	if m.Reply == "" {
		return
	}
	data, err := proto.Marshal(res)
	if err == nil {
		err = m.Respond(data)
	}
	if err != nil {
		pt.p.log.Warn("answer not sent", zap.Error(err))
	}
}
