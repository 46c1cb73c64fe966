package presence

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Tracker keeps one gateway's keys: its heartbeat, renewed every TTL/3,
// and <user>.<gateway> from the user's first connection there to the last.
//
// Set only records, so sessions never wait on the bus. One writer (Run)
// turns what was recorded into KV writes, and as the only writer of the
// gateway's keys it issues them in the order it decides them. The tracker
// keeps nothing per user beyond the changes not yet written: a user's key
// is written once, and only the heartbeat is renewed.
type Tracker struct {
	nc      *nats.Conn
	w       keyWriter
	gateway string
	ttl     time.Duration
	log     *zap.Logger
	online  func() []string // the users with a connection here now
	beaten  bool            // the beating goroutine's: a heartbeat of this run was stored
	lost    bool            // the beating goroutine's: the heartbeat was found gone

	mu    sync.Mutex
	dirty map[string]bool // users whose key may be out of date -> whether online here
	wake  chan struct{}
}

// NewTracker prepares the tracker of gateway; Run writes its keys. online
// lists the users with a connection on the gateway: the tracker writes
// them all again when it finds its heartbeat gone (the bucket was lost, or
// the Keeper took the gateway for dead).
func NewTracker(ctx context.Context, nc *nats.Conn, gateway string, online func() []string, log *zap.Logger) (*Tracker, error) {
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
		nc: nc, w: keyWriter{js: js, log: log}, gateway: gateway, ttl: ttl, log: log, online: online,
		dirty: make(map[string]bool),
		wake:  make(chan struct{}, 1),
	}, nil
}

// Set records whether user has a connection on this gateway. The gateway
// calls it when the user's first connection there opens and when the last
// one closes, in that order (the tracker keeps no count of its own).
func (t *Tracker) Set(user string, online bool) {
	t.mu.Lock()
	t.dirty[user] = online
	t.mu.Unlock()
	t.poke()
}

// poke wakes Run's writer.
func (t *Tracker) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Run writes keys until ctx ends, then purges every key of the gateway, so
// a gateway that stops cleanly takes its users offline at once. It starts
// by purging the keys a previous run under the same gateway id left (a
// restart quicker than the heartbeat's TTL), then beats before writing any
// user's key: the Keeper ends the keys of a gateway without a heartbeat.
// Beats then go on their own, so a slow round of key writes never delays
// them.
func (t *Tracker) Run(ctx context.Context) {
	t.purgeAll(ctx)
	t.beat(ctx)
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		renew := time.NewTicker(t.ttl / 3)
		defer renew.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-renew.C:
				t.beat(ctx)
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			<-beating
			stop, cancel := context.WithTimeout(context.Background(), writeTimeout)
			t.purgeAll(stop)
			cancel()
			return
		case <-t.wake:
		}
		t.reconcile(ctx)
	}
}

// beat renews the gateway's heartbeat key. If the last heartbeat stored is
// not a live one of this run (it expired, so the Keeper ended the gateway's
// keys, or the bucket was lost), every user online here is written again.
// A beat whose ack timed out but was stored counts as live: only the bucket
// is asked, not the ack.
func (t *Tracker) beat(ctx context.Context) {
	subject := keyPrefix + heartbeatKey(t.gateway)
	if t.beaten && !t.lost {
		t.lost = t.heartbeatGone(ctx, subject)
	}
	m := nats.NewMsg(subject)
	m.Data = []byte(strconv.FormatInt(time.Now().UnixMilli(), 10))
	m.Header.Set(jetstream.MsgTTLHeader, t.ttl.String())
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if _, err := t.w.js.PublishMsg(ctx, m); err != nil {
		t.log.Warn("presence: heartbeat failed", zap.Error(err))
		return // lost stays set for the next beat
	}
	t.beaten = true
	if !t.lost {
		return
	}
	t.lost = false
	// After the beat: a gateway's keys follow its heartbeat (Keeper.endOrphans).
	t.log.Warn("presence: the gateway's heartbeat was gone, writing every user's key again")
	online := t.online() // not under mu: the gateway calls Set under its own lock
	t.mu.Lock()
	for _, u := range online {
		if _, changed := t.dirty[u]; !changed {
			t.dirty[u] = true
		}
	}
	t.mu.Unlock()
	t.poke()
}

// heartbeatGone reads the last heartbeat stored with a Direct Get, which
// the stream answers itself: a leader get waits in the JetStream API's one
// queue, which a connect storm's room-head reads fill. A replica lagging
// behind can only make the tracker write its keys once more than needed.
func (t *Tracker) heartbeatGone(ctx context.Context, subject string) bool {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	msgs, err := bus.LastBySubjects(ctx, t.nc, stream, []string{subject})
	return err == nil && (len(msgs) == 0 || isMarker(msgs[0].Header))
}

// purgeAll ends every key of this gateway, heartbeat included.
func (t *Tracker) purgeAll(ctx context.Context) {
	users, err := gatewayUsers(ctx, t.w.js, t.gateway)
	if err != nil {
		t.log.Warn("presence: the gateway's keys could not be listed", zap.Error(err))
	}
	msgs := []*nats.Msg{purgeMsg(heartbeatKey(t.gateway), t.ttl)}
	for u := range users {
		msgs = append(msgs, purgeMsg(connKey(u, t.gateway), t.ttl))
	}
	t.w.write(ctx, msgs, func(int, bool) {})
}

// reconcile writes the keys of users whose connections came or went. A
// user who left and came back since the last round is written again,
// which is harmless. A failed write is retried next round unless the user
// changed meanwhile.
func (t *Tracker) reconcile(ctx context.Context) {
	t.mu.Lock()
	dirty := t.dirty
	if len(dirty) == 0 {
		t.mu.Unlock()
		return
	}
	// A new map: a cleared one would keep the storm's size.
	t.dirty = make(map[string]bool)
	t.mu.Unlock()
	users := make([]string, 0, len(dirty))
	msgs := make([]*nats.Msg, 0, len(dirty))
	for u, online := range dirty {
		users = append(users, u)
		if online {
			msgs = append(msgs, nats.NewMsg(keyPrefix+connKey(u, t.gateway)))
		} else {
			msgs = append(msgs, purgeMsg(connKey(u, t.gateway), t.ttl))
		}
	}
	t.w.write(ctx, msgs, func(i int, ok bool) {
		u := users[i]
		if ok {
			if dirty[u] {
				t.announce(u)
			}
			return
		}
		t.mu.Lock()
		if _, changed := t.dirty[u]; !changed {
			t.dirty[u] = dirty[u]
		}
		t.mu.Unlock()
	})
}

// announce publishes user's online transition.
func (t *Tracker) announce(user string) {
	data, _ := proto.Marshal(&pb.PresenceEvent{User: user, Online: true})
	if err := t.nc.Publish(bus.PresenceEvents(user), data); err != nil {
		t.log.Warn("presence announce failed", zap.String("user", user), zap.Error(err))
	}
}
