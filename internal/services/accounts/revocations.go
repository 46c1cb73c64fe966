package accounts

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/internal/bus"
)

// RevokedBucket is the JetStream KV bucket of revoked login sessions: key
// the session id, value its user. An access token carries its session id,
// so a gateway refuses the tokens of a session in this bucket. Entries
// expire once every access token issued before the revocation has.
const RevokedBucket = "parley_revoked_sessions"

const (
	// clockSkew is kept on top of the access token TTL, for gateways whose
	// clock is behind the service's.
	clockSkew = time.Minute
	// markerTTL keeps the markers of expired entries long enough for
	// watchers to drop them from memory.
	markerTTL = time.Minute
)

// RevocationBucket creates the bucket, or updates it to accessTTL: every
// process of a deployment must use the same access token TTL.
func RevocationBucket(ctx context.Context, js jetstream.JetStream, accessTTL time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := bus.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:         RevokedBucket,
		Description:    "Revoked login sessions; their access tokens are refused",
		TTL:            accessTTL + clockSkew,
		LimitMarkerTTL: markerTTL,
		Replicas:       max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: bucket %s: %w", RevokedBucket, err)
	}
	return kv, nil
}

// Revocations mirrors the revocation bucket in memory, so checking a token
// costs no round trip.
type Revocations struct {
	mu      sync.RWMutex
	revoked map[string]struct{}
	w       jetstream.KeyWatcher
	done    chan struct{}
}

// WatchRevocations loads the bucket, then follows it until Stop, calling
// onRevoke with each session revoked from then on (after it is in the set).
// It returns once the bucket is loaded, so no token of a session revoked
// before the call is accepted.
func WatchRevocations(ctx context.Context, kv jetstream.KeyValue, onRevoke func(session string)) (*Revocations, error) {
	// The watcher lives until Stop, not until ctx ends.
	w, err := kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("accounts: watch %s: %w", RevokedBucket, err)
	}
	r := &Revocations{revoked: make(map[string]struct{}), w: w, done: make(chan struct{})}
	for loaded := false; !loaded; {
		select {
		case e := <-w.Updates():
			if loaded = e == nil; !loaded {
				r.apply(e)
			}
		case <-ctx.Done():
			_ = w.Stop()
			return nil, fmt.Errorf("accounts: load %s: %w", RevokedBucket, ctx.Err())
		}
	}
	go func() {
		defer close(r.done)
		for e := range w.Updates() {
			if e != nil && r.apply(e) {
				onRevoke(e.Key())
			}
		}
	}()
	return r, nil
}

// apply records an entry: a revocation, or the expiry marker that ends
// one. It reports whether e revoked a session.
func (r *Revocations) apply(e jetstream.KeyValueEntry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Operation() == jetstream.KeyValuePut {
		r.revoked[e.Key()] = struct{}{}
		return true
	}
	delete(r.revoked, e.Key())
	return false
}

// Revoked reports whether session has been revoked ("" never is: tokens
// without a session are development tokens).
func (r *Revocations) Revoked(session string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.revoked[session]
	return ok
}

// Stop ends the watch.
func (r *Revocations) Stop() {
	_ = r.w.Stop()
	<-r.done
}
