package presence

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/pkg/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Tracker keeps one gateway's keys: <user>.<gateway> exists while the user
// has a connection on the gateway.
//
// Set only records, so sessions never wait on the bus. One writer (Run)
// turns what was recorded into KV writes, and as the only writer of
// the gateway's keys it issues them in the order it decides them: a purge
// is never overtaken by a renewal of the same key. A user who leaves and
// comes back between two runs of the writer costs no write at all.
type Tracker struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	gateway string
	ttl     time.Duration
	log     *zap.Logger

	mu    sync.Mutex
	dirty map[string]bool // users whose key may be out of date -> whether online here
	wake  chan struct{}

	live map[string]struct{} // Run's own: users whose key is written and not purged
}

// writeBatch bounds the KV writes in flight at once.
const writeBatch = 512

// writeTimeout bounds waiting for the acks of one round of writes.
const writeTimeout = 5 * time.Second

// NewTracker prepares the tracker of gateway; Run writes its keys.
func NewTracker(ctx context.Context, nc *nats.Conn, gateway string, log *zap.Logger) (*Tracker, error) {
	// A JetStream context of its own: async publish bookkeeping apart
	// from the gateway's.
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	ttl, err := keyTTL(ctx, js)
	if err != nil {
		return nil, err
	}
	return &Tracker{
		nc: nc, js: js, gateway: gateway, ttl: ttl, log: log,
		dirty: make(map[string]bool),
		wake:  make(chan struct{}, 1),
		live:  make(map[string]struct{}),
	}, nil
}

// Set records whether user has a connection on this gateway. The gateway
// calls it when the user's first connection there opens and when the last
// one closes, in that order (the tracker keeps no count of its own).
func (t *Tracker) Set(user string, online bool) {
	t.mu.Lock()
	t.dirty[user] = online
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Run writes keys until ctx ends, then purges every key it holds, so a
// gateway that stops cleanly takes its users offline at once.
func (t *Tracker) Run(ctx context.Context) {
	renew := time.NewTicker(t.ttl / 3)
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.Background(), writeTimeout)
			t.purge(stop, slices.Collect(maps.Keys(t.live)))
			cancel()
			return
		case <-t.wake:
		case <-renew.C:
			t.put(ctx, slices.Collect(maps.Keys(t.live)), false)
		}
		t.reconcile(ctx)
	}
}

// reconcile writes the keys of users whose connections came or went.
func (t *Tracker) reconcile(ctx context.Context) {
	var up, down []string
	t.mu.Lock()
	dirty := t.dirty
	// A new map: a cleared one would keep the storm's size.
	t.dirty = make(map[string]bool)
	t.mu.Unlock()
	for u, want := range dirty {
		_, have := t.live[u]
		switch {
		case want && !have:
			up = append(up, u)
		case !want && have:
			down = append(down, u)
		}
	}
	t.purge(ctx, down)
	t.put(ctx, up, true)
}

// put writes users' keys with a fresh TTL. announce publishes their online
// transition once stored (new keys). A user whose write fails is retried
// with the next renewal and announced again: the key may have expired
// meanwhile, and the Keeper then said offline.
func (t *Tracker) put(ctx context.Context, users []string, announce bool) {
	t.write(ctx, users, func(user string) *nats.Msg {
		return nats.NewMsg(keyPrefix + connKey(user, t.gateway))
	}, func(user string, ok bool) {
		if ok {
			t.live[user] = struct{}{}
			if announce {
				t.announce(user)
			}
			return
		}
		delete(t.live, user)
		t.mu.Lock()
		if _, changed := t.dirty[user]; !changed {
			t.dirty[user] = true // still online here: write again
		}
		t.mu.Unlock()
	})
}

// purge ends users' keys. Renewals stop whether or not the purge is
// stored; if it is not, the key expires within the TTL instead.
func (t *Tracker) purge(ctx context.Context, users []string) {
	t.write(ctx, users, func(user string) *nats.Msg {
		delete(t.live, user)
		m := nats.NewMsg(keyPrefix + connKey(user, t.gateway))
		// What jetstream.KeyValue.Purge writes, issued asynchronously.
		m.Header.Set("KV-Operation", "PURGE")
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		return m
	}, func(string, bool) {})
}

// write publishes one message per user, writeBatch at a time, each with
// the key TTL (purge markers then go after the TTL too), and reports each
// outcome to done. The whole call waits writeTimeout at most, so a lost
// NATS connection does not hold the writer for long.
func (t *Tracker) write(ctx context.Context, users []string, msg func(user string) *nats.Msg, done func(user string, ok bool)) {
	wait, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	for batch := range slices.Chunk(users, writeBatch) {
		acks := make([]jetstream.PubAckFuture, len(batch))
		for i, u := range batch {
			f, err := t.js.PublishMsgAsync(msg(u), jetstream.WithMsgTTL(t.ttl))
			if err != nil {
				t.log.Warn("presence write failed", zap.String("user", u), zap.Error(err))
			}
			acks[i] = f
		}
		for i, u := range batch {
			ok := acks[i] != nil
			if ok {
				select {
				case <-acks[i].Ok():
				case err := <-acks[i].Err():
					t.log.Warn("presence write failed", zap.String("user", u), zap.Error(err))
					ok = false
				case <-wait.Done():
					ok = false
				}
			}
			done(u, ok)
		}
	}
}

// announce publishes user's online transition.
func (t *Tracker) announce(user string) {
	data, _ := proto.Marshal(&pb.PresenceEvent{User: user, Online: true})
	if err := t.nc.Publish(bus.PresenceEvents(user), data); err != nil {
		t.log.Warn("presence announce failed", zap.String("user", user), zap.Error(err))
	}
}
