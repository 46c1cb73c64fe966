// Package presence keeps who is online in the NATS KV bucket PRESENCE, for
// gateways (which write it) and any component that asks (Directory).
//
// # Keys
//
// User and gateway ids are single subject tokens, so both fit in a key:
//
//	<user>.<gateway>   exists while user has a connection on gateway
//	<user>             unix milliseconds the user was last seen online (kept
//	                   30 days)
//	gw.<gateway>.alive the gateway's heartbeat (three tokens: never a user's)
//
// A user is online while any <user>.* key exists, so a user connected
// through two gateways stays online until both are gone. Each gateway
// (Tracker) writes a user's key once, when the user's first connection
// there opens, and purges it when the last one closes; it renews only its
// heartbeat, every TTL/3, with a per-message TTL. A killed gateway beats no
// more: its heartbeat expires within the TTL, the server leaves a marker in
// its place (LimitMarkerTTL), and the Keeper purges the gateway's user keys.
//
// # Transitions
//
// Online and offline transitions go out on the core subjects
// presence.<user> (pb.PresenceEvent): "online" from the gateway whose key
// appears, "offline" from the Keeper, the one component that follows the
// bucket and sees purges. A gateway takes all transitions on one wildcard
// subscription and keeps those its users follow.
//
// # Cost
//
// A user's connection to a gateway costs two KV writes (its key and the
// purge), however long it lasts; each gateway adds one heartbeat write per
// TTL/3. The Keeper reads them all, headers only. A transition is one core
// NATS message. One bucket and one consumer, however many users.
//
// The bucket is in memory: presence means nothing after a restart of the
// whole NATS cluster. A gateway finds its last heartbeat missing at the
// next beat and writes its users' keys again; so does a gateway the Keeper
// took for dead (a partition longer than the TTL).
package presence

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/internal/bus"
)

// Bucket is the KV bucket holding presence.
const Bucket = "PRESENCE"

const (
	stream    = "KV_" + Bucket
	keyPrefix = "$KV." + Bucket + "."
	// ttlMetadata records the key TTL in the bucket's metadata, so every
	// component uses the one the deployment configured.
	ttlMetadata = "parley_key_ttl"
)

// Config is a deployment's presence setting.
type Config struct {
	// TTL is how long a gateway's heartbeat outlives its last renewal:
	// about the time within which a killed gateway's users go offline
	// (default 60s, at least 3s).
	TTL      time.Duration
	Replicas int // of the bucket: 3 in a cluster (default 1)
}

// DefaultTTL is the key TTL unless configured.
const DefaultTTL = 60 * time.Second

// Ensure creates or updates the bucket.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.TTL < 3*time.Second {
		return fmt.Errorf("presence: TTL %v is under 3s (renewals every TTL/3 need whole seconds)", c.TTL)
	}
	_, err := bus.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Parley presence: <user>.<gateway> while connected, <user> = last seen",
		Storage:     jetstream.MemoryStorage,
		Replicas:    max(c.Replicas, 1),
		// Markers of purged and expired keys: the Keeper reads them, then
		// they go, so keys of gateways long gone do not pile up.
		LimitMarkerTTL: c.TTL,
		Metadata:       map[string]string{ttlMetadata: c.TTL.String()},
	})
	if err != nil {
		return fmt.Errorf("presence: bucket %s: %w", Bucket, err)
	}
	return nil
}

// keyTTL reads the key TTL Ensure recorded.
func keyTTL(ctx context.Context, js jetstream.JetStream) (time.Duration, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return 0, fmt.Errorf("presence: bucket %s: %w", Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("presence: bucket %s: %w", Bucket, err)
	}
	ttl, err := time.ParseDuration(st.Metadata()[ttlMetadata])
	if err != nil {
		return 0, fmt.Errorf("presence: bucket %s has no valid %s: %w", Bucket, ttlMetadata, err)
	}
	return ttl, nil
}

// connKey is the key of user's connections on gateway.
func connKey(user, gateway string) string { return user + "." + gateway }

// heartbeatKey is gateway's heartbeat. Its three tokens set it apart from
// every user key (one or two tokens).
func heartbeatKey(gateway string) string { return "gw." + gateway + ".alive" }

// parseSubject splits a bucket subject of a user key into user and gateway
// ("" for the last-seen key); false for any other subject.
func parseSubject(subject string) (user, gateway string, ok bool) {
	key, ok := strings.CutPrefix(subject, keyPrefix)
	if !ok {
		return "", "", false
	}
	user, gateway, _ = strings.Cut(key, ".")
	return user, gateway, user != "" && !strings.Contains(gateway, ".")
}

// parseHeartbeat returns the gateway of a heartbeat key's subject.
func parseHeartbeat(subject string) (gateway string, ok bool) {
	key, ok := strings.CutPrefix(subject, keyPrefix+"gw.")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(key, ".alive")
}

// purgeMsg ends key as jetstream.KeyValue.Purge does, with a TTL on the
// purge marker so it goes once read.
func purgeMsg(key string, ttl time.Duration) *nats.Msg {
	m := nats.NewMsg(keyPrefix + key)
	m.Header.Set("KV-Operation", "PURGE")
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Header.Set(jetstream.MsgTTLHeader, ttl.String())
	return m
}

// gatewayUsers lists the users with a key of gateway, each with the
// key's revision (its stream sequence).
func gatewayUsers(ctx context.Context, js jetstream.JetStream, gateway string) (map[string]uint64, error) {
	keys, err := keyRevisions(ctx, js, "*."+gateway)
	if err != nil {
		return nil, err
	}
	users := make(map[string]uint64, len(keys))
	for key, rev := range keys {
		if user, _, ok := strings.Cut(key, "."); ok {
			users[user] = rev
		}
	}
	return users, nil
}

// keyRevisions lists the live keys matching filter with their revisions.
func keyRevisions(ctx context.Context, js jetstream.JetStream, filter string) (map[string]uint64, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	w, err := kv.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	defer w.Stop()
	keys := make(map[string]uint64)
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return keys, nil // the current keys are all there
			}
			keys[e.Key()] = e.Revision()
		case <-ctx.Done():
			return nil, fmt.Errorf("presence: listing keys %s: %w", filter, ctx.Err())
		}
	}
}

// keyWriter publishes bucket writes asynchronously, writeBatch at a time.
type keyWriter struct {
	js  jetstream.JetStream
	log *zap.Logger
}

// writeBatch bounds the KV writes in flight at once.
const writeBatch = 512

// writeTimeout bounds waiting for the acks of one call.
const writeTimeout = 5 * time.Second

// write publishes msgs and reports each outcome to done, by index. The
// whole call waits writeTimeout at most, so a lost NATS connection does
// not hold the writer for long.
func (w keyWriter) write(ctx context.Context, msgs []*nats.Msg, done func(i int, ok bool)) {
	wait, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	for start := 0; start < len(msgs); start += writeBatch {
		batch := msgs[start:min(start+writeBatch, len(msgs))]
		acks := make([]jetstream.PubAckFuture, len(batch))
		for i, m := range batch {
			f, err := w.js.PublishMsgAsync(m)
			if err != nil {
				w.log.Warn("presence write failed", zap.String("subject", m.Subject), zap.Error(err))
			}
			acks[i] = f
		}
		for i, f := range acks {
			ok := f != nil
			if ok {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					w.log.Warn("presence write failed", zap.String("subject", batch[i].Subject), zap.Error(err))
					ok = false
				case <-wait.Done():
					ok = false
				}
			}
			done(start+i, ok)
		}
	}
}

// isMarker reports whether a stored message ends its key: a delete or
// purge, or the marker the server leaves when a key expires.
func isMarker(h nats.Header) bool {
	return h.Get("KV-Operation") != "" || h.Get(jetstream.MarkerReasonHeader) != ""
}

// State is what the bucket says about one user.
type State struct {
	Online   bool
	LastSeen time.Time // zero if never seen offline
}

// Directory answers presence questions. It reads with Direct Get, which
// any replica answers, so it may lag a write by a moment.
type Directory struct {
	NC *nats.Conn
}

// usersPerGet keeps one Direct Get under the server's limit of results,
// with room for a few gateways per user.
const usersPerGet = 100

// States returns the state of each of users.
func (d Directory) States(ctx context.Context, users []string) (map[string]State, error) {
	out := make(map[string]State, len(users))
	for chunk := range slices.Chunk(users, usersPerGet) {
		filters := make([]string, 0, 2*len(chunk))
		for _, u := range chunk {
			filters = append(filters, keyPrefix+u, keyPrefix+u+".*")
		}
		msgs, err := bus.LastBySubjects(ctx, d.NC, stream, filters)
		if err != nil {
			return nil, fmt.Errorf("presence: %w", err)
		}
		for _, m := range msgs {
			user, gateway, ok := parseSubject(m.Subject)
			if !ok || isMarker(m.Header) {
				continue
			}
			s := out[user]
			if gateway != "" {
				s.Online = true
			} else if ms, err := strconv.ParseInt(string(m.Data), 10, 64); err == nil {
				s.LastSeen = time.UnixMilli(ms)
			}
			out[user] = s
		}
	}
	return out, nil
}

// Gateways lists the gateways where user has a connection.
func (d Directory) Gateways(ctx context.Context, user string) ([]string, error) {
	msgs, err := bus.LastBySubjects(ctx, d.NC, stream, []string{keyPrefix + user + ".*"})
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	var out []string
	for _, m := range msgs {
		if _, gateway, ok := parseSubject(m.Subject); ok && gateway != "" && !isMarker(m.Header) {
			out = append(out, gateway)
		}
	}
	return out, nil
}

// Online reports whether any device of user is connected.
func (d Directory) Online(ctx context.Context, user string) (bool, error) {
	st, err := d.States(ctx, []string{user})
	return st[user].Online, err
}
