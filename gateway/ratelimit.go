package gateway

import (
	"sync"

	"golang.org/x/time/rate"
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

func limit(perSecond float64) rate.Limit {
	if perSecond < 0 {
		return rate.Inf
	}
	return rate.Limit(perSecond)
}

// userLimits is one user's buckets on this gateway, shared by all of the
// user's connections and API calls here. Each gateway limits on its own, so
// a user spread over n gateways gets up to n times the rate.
type userLimits struct {
	sends, requests *rate.Limiter
	refs            int
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
		u = &userLimits{
			sends:    rate.NewLimiter(limit(l.cfg.SendRate), l.cfg.SendBurst),
			requests: rate.NewLimiter(limit(l.cfg.RequestRate), l.cfg.RequestBurst),
		}
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
