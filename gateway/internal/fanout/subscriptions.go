package fanout

import (
	"hash/fnv"
	"runtime"
	"sync"

	"github.com/nats-io/nats.go"
)

// subscriptions runs the handlers of the gateway's many core NATS
// subscriptions (one per online user, one per followed contact, two per
// room) on a fixed set of goroutines. nats.go gives each callback
// subscription a goroutine of its own, whose stack alone would cost more
// than the idle connections these subscriptions serve.
//
// A subject always lands on the same shard and a shard is one goroutine,
// so each subscription's messages are handled one at a time, in order.
// A shard's queue is bounded: should its handlers stall long enough to
// fill it, nats.go drops that shard's messages as a slow consumer (room
// hubs refill such gaps from the stream, see hub.onLive). Handlers must
// therefore not block on anything but short bus or store calls.
type subscriptions struct {
	nc     *nats.Conn
	shards []*subShard
	done   chan struct{}
	wg     sync.WaitGroup
}

type subShard struct {
	queue    chan *nats.Msg
	mu       sync.RWMutex
	handlers map[*nats.Subscription]nats.MsgHandler
}

// subShardQueue is each shard's queue length, in messages.
const subShardQueue = 1 << 14

func newSubscriptions(nc *nats.Conn) *subscriptions {
	s := &subscriptions{nc: nc, shards: make([]*subShard, max(4, 2*runtime.GOMAXPROCS(0))), done: make(chan struct{})}
	for i := range s.shards {
		sh := &subShard{queue: make(chan *nats.Msg, subShardQueue), handlers: make(map[*nats.Subscription]nats.MsgHandler)}
		s.shards[i] = sh
		s.wg.Go(func() { s.run(sh) })
	}
	return s
}

func (s *subscriptions) run(sh *subShard) {
	for {
		select {
		case m := <-sh.queue:
			sh.mu.RLock()
			h := sh.handlers[m.Sub]
			sh.mu.RUnlock()
			if h != nil { // nil: unsubscribed since
				h(m)
			}
		case <-s.done:
			return
		}
	}
}

func (s *subscriptions) shard(subject string) *subShard {
	h := fnv.New32a()
	_, _ = h.Write([]byte(subject))
	return s.shards[h.Sum32()%uint32(len(s.shards))]
}

// subscribe calls h for each message on subject.
func (s *subscriptions) subscribe(subject string, h nats.MsgHandler) (*nats.Subscription, error) {
	sh := s.shard(subject)
	// Registered under the lock the shard's goroutine reads it with, so
	// the first message cannot be looked up before its handler is known.
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sub, err := s.nc.ChanSubscribe(subject, sh.queue)
	if err != nil {
		return nil, err
	}
	sh.handlers[sub] = h
	return sub, nil
}

// unsubscribe ends sub; messages of it still queued are dropped.
func (s *subscriptions) unsubscribe(sub *nats.Subscription) {
	_ = sub.Unsubscribe()
	sh := s.shard(sub.Subject)
	sh.mu.Lock()
	delete(sh.handlers, sub)
	sh.mu.Unlock()
}

// stop ends the shards' goroutines; what is still queued is dropped.
func (s *subscriptions) stop() {
	close(s.done)
	s.wg.Wait()
}
