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
// user's connections and API calls here (it lives in the user's localUser).
// Each gateway limits on its own, so a user spread over n gateways gets up
// to n times the rate.
type userLimits struct {
	mu              sync.Mutex
	sends, requests bucket
}

// bucket is a token bucket in 16 bytes (a rate.Limiter takes 80, and
// every connected user holds two).
type bucket struct {
	tokens float64
	at     time.Duration // of the last refill, on the monotonic clock; 0: full
}

// clockStart is the origin of bucket.at.
var clockStart = time.Now()

func (u *userLimits) allowSend(cfg *RateLimits) bool {
	return u.take(&u.sends, cfg.SendRate, cfg.SendBurst)
}

func (u *userLimits) allowRequest(cfg *RateLimits) bool {
	return u.take(&u.requests, cfg.RequestRate, cfg.RequestBurst)
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
