// Package ratelimit holds per-user token buckets: a user's sends and other
// requests on one gateway, shared by all of that user's connections and API
// calls there. Each gateway limits on its own, so a user spread over n
// gateways gets up to n times the rate. A User costs 40 bytes: every
// connected user holds one.
package ratelimit

import (
	"sync"
	"time"
)

// Config sets the per-user token buckets. Negative rates disable a limit.
type Config struct {
	SendRate     float64 // messages per second
	SendBurst    int
	RequestRate  float64 // other requests (WebSocket and HTTP) per second
	RequestBurst int
}

// WithDefaults fills the zero rates: 50 sends/s (bursts of 100), 100
// requests/s (bursts of 200).
func (r Config) WithDefaults() Config {
	if r.SendRate == 0 {
		r.SendRate, r.SendBurst = 50, 100
	}
	if r.RequestRate == 0 {
		r.RequestRate, r.RequestBurst = 100, 200
	}
	return r
}

// User is one user's buckets on this gateway; the zero value is full.
type User struct {
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

// AllowSend takes a send token.
func (u *User) AllowSend(cfg *Config) bool {
	return u.take(&u.sends, cfg.SendRate, cfg.SendBurst)
}

// AllowRequest takes a token for any other request.
func (u *User) AllowRequest(cfg *Config) bool {
	return u.take(&u.requests, cfg.RequestRate, cfg.RequestBurst)
}

// take takes a token from b, refilled at perSecond up to burst.
func (u *User) take(b *bucket, perSecond float64, burst int) bool {
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
