package presence

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Keeper consumer settings. One durable consumer in a pinned priority
// group: several processes may run a Keeper, one of them reads.
const (
	keeperConsumer = "presence-keeper"
	keeperGroup    = "keeper"
	keeperPinTTL   = 10 * time.Second
)

// Keeper publishes offline transitions: it follows the bucket's
// connection keys and, when one is purged (a user's last connection on a
// gateway closed, or the gateway ended) and the user has no other, records
// the last-seen time and publishes offline. When a gateway's heartbeat
// expires (the gateway died), the Keeper purges that gateway's keys itself,
// dating the users' last sight to the last heartbeat.
//
// It reads the gateways' heartbeats too (headers only): one reader for the
// whole deployment rather than every gateway.
type Keeper struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	w        keyWriter
	consumer jetstream.Consumer
	dir      Directory
	ttl      time.Duration
	log      *zap.Logger
}

// NewKeeper creates the keeper's consumer, so that from its return no
// departure is missed; Run reads it.
func NewKeeper(ctx context.Context, nc *nats.Conn, log *zap.Logger) (*Keeper, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	ttl, err := keyTTL(ctx, js)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:        keeperConsumer,
		Description:    "Parley presence: offline transitions",
		FilterSubjects: []string{keyPrefix + "*.*", keyPrefix + heartbeatKey("*")},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		// Acked, so a message the client library drops (it may, when its
		// pull accounting resets under load) comes again instead of a
		// departure going unannounced.
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        keeperAckWait,
		MaxAckPending:  keeperMaxPending,
		HeadersOnly:    true,
		PriorityGroups: []string{keeperGroup},
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PinnedTTL:      keeperPinTTL,
	}
	c, err := s.CreateOrUpdateConsumer(ctx, cfg)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// A consumer left with settings that cannot be updated in place
		// (an earlier Parley's): made again, from new messages on.
		if derr := s.DeleteConsumer(ctx, keeperConsumer); derr == nil {
			log.Warn("presence keeper: consumer made again", zap.Error(err))
			c, err = s.CreateOrUpdateConsumer(ctx, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("presence: consumer %s: %w", keeperConsumer, err)
	}
	return &Keeper{nc: nc, js: js, w: keyWriter{js: js, log: log}, consumer: c, dir: Directory{NC: nc}, ttl: ttl, log: log}, nil
}

// Run settles departures until ctx ends. It starts by ending the keys of
// gateways without a heartbeat, whose expiry no Keeper was there to read.
func (k *Keeper) Run(ctx context.Context) error {
	if err := k.endOrphans(ctx); err != nil {
		k.log.Warn("presence keeper: orphaned keys not checked", zap.Error(err))
	}
	it, err := k.consumer.Messages(jetstream.PullPriorityGroup(keeperGroup))
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	gone := make(chan departure, keeperBatch)
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.settleAll(ctx, gone)
	}()
	defer func() { <-done }()
	defer close(gone)
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			k.log.Warn("presence keeper pull failed", zap.Error(err))
			continue
		}
		if gw, ok := parseHeartbeat(m.Subject()); ok {
			if m.Headers().Get(jetstream.MarkerReasonHeader) != "" {
				k.endGateway(ctx, gw, k.markedAt(m).Add(-k.ttl))
			}
		} else if d, ok := k.departureOf(m); ok {
			gone <- d
		}
		_ = m.Ack() // a lost ack only brings the message again: settling is idempotent
	}
}

// The Keeper consumer's ack settings: a message not acked within
// keeperAckWait comes again, and up to keeperMaxPending may wait for acks.
const (
	keeperAckWait    = 30 * time.Second
	keeperMaxPending = 10000
)

// keeperBatch bounds the departures settled with one presence read.
const keeperBatch = usersPerGet

// lastSeenTTL is how long a last-seen time is kept: the bucket is in
// memory, so it holds the users seen within this, not every user ever.
const lastSeenTTL = 30 * 24 * time.Hour

// departure is the end of one connection key.
type departure struct {
	user string
	at   time.Time // when the user was last known online
}

// departureOf tells whether m ends a connection key, and when its user was
// last known there: at the purge, or, for the purges endGateway writes,
// at the gateway's last heartbeat.
func (k *Keeper) departureOf(m jetstream.Msg) (departure, bool) {
	user, _, ok := parseSubject(m.Subject())
	if !ok || !isMarker(m.Headers()) {
		return departure{}, false
	}
	at := k.markedAt(m)
	if ms, err := strconv.ParseInt(m.Headers().Get(headerLastSeen), 10, 64); err == nil {
		at = time.UnixMilli(ms)
	}
	return departure{user: user, at: at}, true
}

// markedAt is when m was stored.
func (k *Keeper) markedAt(m jetstream.Msg) time.Time {
	if md, err := m.Metadata(); err == nil {
		return md.Timestamp
	}
	return time.Now()
}

// headerLastSeen dates the users' last sight on the purges the Keeper
// writes for a dead gateway (unix milliseconds).
const headerLastSeen = "Parley-Last-Seen"

// endGateway purges the keys of a gateway whose heartbeat expired, unless
// it beats again (it was only slow); the purges come back to the Keeper as
// departures. A gateway that beats again after this finds the expiry and
// writes its keys back (Tracker.beat).
func (k *Keeper) endGateway(ctx context.Context, gateway string, lastSeen time.Time) {
	if hb, err := bus.LastBySubjects(ctx, k.nc, stream, []string{keyPrefix + heartbeatKey(gateway)}); err == nil && len(hb) == 1 && !isMarker(hb[0].Header) {
		k.log.Info("presence keeper: gateway beats again, its keys stay", zap.String("gateway", gateway))
		return
	}
	users, err := gatewayUsers(ctx, k.js, gateway)
	if err != nil {
		k.log.Warn("presence keeper: a dead gateway's keys could not be listed", zap.String("gateway", gateway), zap.Error(err))
		return
	}
	k.log.Info("presence keeper: gateway gone, its users go offline", zap.String("gateway", gateway), zap.Int("users", len(users)))
	msgs := make([]*nats.Msg, 0, len(users))
	for u, rev := range users {
		m := purgeMsg(connKey(u, gateway), k.ttl)
		m.Header.Set(headerLastSeen, strconv.FormatInt(lastSeen.UnixMilli(), 10))
		// Only the key as listed: one the gateway wrote again meanwhile
		// (it came back) stays.
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
		msgs = append(msgs, m)
	}
	k.w.write(ctx, msgs, func(int, bool) {})
}

// settleAll settles departures as they come, batching those that queue
// up (a dead gateway's users expire together) into one presence read.
func (k *Keeper) settleAll(ctx context.Context, gone <-chan departure) {
	for d := range gone {
		batch := map[string]time.Time{d.user: d.at}
	drain:
		for len(batch) < keeperBatch {
			select {
			case d, ok := <-gone:
				if !ok {
					break drain
				}
				batch[d.user] = d.at
			default:
				break drain
			}
		}
		k.settle(ctx, batch)
	}
}

// settle takes offline the users of batch with no connection key left.
func (k *Keeper) settle(ctx context.Context, batch map[string]time.Time) {
	users := slices.Collect(maps.Keys(batch))
	states, err := k.dir.States(ctx, users)
	if err != nil {
		k.log.Warn("presence keeper: read failed", zap.Int("users", len(users)), zap.Error(err))
		return
	}
	var offline []string
	var acks []jetstream.PubAckFuture
	for _, u := range users {
		if states[u].Online {
			continue // another device is still connected somewhere
		}
		offline = append(offline, u)
		seen := batch[u].UnixMilli()
		f, err := k.js.PublishAsync(keyPrefix+u, []byte(strconv.FormatInt(seen, 10)), jetstream.WithMsgTTL(lastSeenTTL))
		if err != nil {
			k.log.Warn("presence keeper: last seen not stored", zap.String("user", u), zap.Error(err))
		} else {
			acks = append(acks, f)
		}
		k.publish(&pb.PresenceEvent{User: u, LastSeen: seen})
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			k.log.Warn("presence keeper: last seen not stored", zap.String("subject", f.Msg().Subject), zap.Error(err))
		case <-ctx.Done():
			return
		}
	}
	if len(offline) == 0 {
		return
	}
	// A device may have connected between the read and the offline event,
	// its gateway's online event racing ours: the last word is the state.
	if states, err = k.dir.States(ctx, offline); err != nil {
		k.log.Warn("presence keeper: read failed", zap.Int("users", len(offline)), zap.Error(err))
		return
	}
	for _, u := range offline {
		if states[u].Online {
			k.publish(&pb.PresenceEvent{User: u, Online: true})
		}
	}
}

func (k *Keeper) publish(ev *pb.PresenceEvent) {
	data, _ := proto.Marshal(ev)
	if err := k.nc.Publish(bus.PresenceEvents(ev.User), data); err != nil {
		k.log.Warn("presence keeper: publish failed", zap.String("user", ev.User), zap.Error(err))
	}
}

// endOrphans ends the keys of gateways that have no heartbeat. Keys are
// listed before heartbeats: a gateway beats before writing any key, so a
// key listed has its gateway's heartbeat listed too while it lives.
func (k *Keeper) endOrphans(ctx context.Context) error {
	keys, err := keyRevisions(ctx, k.js, "*.*")
	if err != nil || len(keys) == 0 {
		return err
	}
	heartbeats, err := keyRevisions(ctx, k.js, heartbeatKey("*"))
	if err != nil {
		return err
	}
	ended := make(map[string]bool)
	for key := range keys {
		_, gw, _ := strings.Cut(key, ".")
		if _, alive := heartbeats[heartbeatKey(gw)]; !alive && !ended[gw] {
			ended[gw] = true
			k.endGateway(ctx, gw, time.Now())
		}
	}
	return nil
}
