package gateway

import (
	"sync"
	"time"
)

// RateLimits are per-user token buckets. Negative rates disable a limit.
type RateLimits struct {
	SendRate     float64 // messages per second
	SendBurst    int
	RequestRate  float64 // other requests (WebSocket and HTTP) per second
	RequestBurst int
}

func (r RateLimits) withDefaults() RateLimits {
	if r.SendRate == 0 {
		r.SendRate, r.SendBurst = 50, 100
	}
	if r.RequestRate == 0 {
		r.RequestRate, r.RequestBurst = 100, 200
	}
	return r
}

// userLimits is one user's buckets on this gateway, shared by all of the
// user's connections and API calls here. Each gateway limits on its own, so
// a user spread over n gateways gets up to n times the rate.
type userLimits struct {
	cfg             *RateLimits // the gateway's
	mu              sync.Mutex
	sends, requests bucket
	refs            int // guarded by limiters.mu
}

// bucket is a token bucket in 16 bytes (a rate.Limiter takes 80, and
// every connected user holds two).
type bucket struct {
	tokens float64
	at     time.Duration // of the last refill, on the monotonic clock; 0: full
}

// clockStart is the origin of bucket.at.
var clockStart = time.Now()

func (u *userLimits) allowSend() bool {
	return u.take(&u.sends, u.cfg.SendRate, u.cfg.SendBurst)
}

func (u *userLimits) allowRequest() bool {
	return u.take(&u.requests, u.cfg.RequestRate, u.cfg.RequestBurst)
}

// take takes a token from b, refilled at perSecond up to burst.
func (u *userLimits) take(b *bucket, perSecond float64, burst int) bool {
	if perSecond < 0 {
		return true
	}
	now := time.Since(clockStart)
	u.mu.Lock()
	defer u.mu.Unlock()
	if b.at == 0 {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+perSecond*(now-b.at).Seconds())
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limiters holds the buckets of users with a connection or a request in
// flight on this gateway, and forgets them when the last one ends.
type limiters struct {
	cfg RateLimits
	mu  sync.Mutex
	m   map[string]*userLimits
}

func newLimiters(cfg RateLimits) *limiters {
	return &limiters{cfg: cfg.withDefaults(), m: make(map[string]*userLimits)}
}

func (l *limiters) acquire(user string) *userLimits {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.m[user]
	if u == nil {
		u = &userLimits{cfg: &l.cfg}
		l.m[user] = u
	}
	u.refs++
	return u
}

func (l *limiters) release(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u := l.m[user]; u != nil {
		if u.refs--; u.refs <= 0 {
			delete(l.m, user)
		}
	}
}
