package gateway

import (
	"testing"
	"time"
)

func TestUserLimitsBuckets(t *testing.T) {
	cfg := RateLimits{SendRate: 20, SendBurst: 3, RequestRate: -1}
	u := &userLimits{cfg: &cfg}
	for i := range 3 {
		if !u.allowSend() {
			t.Fatalf("send %d of the burst refused", i+1)
		}
	}
	if u.allowSend() {
		t.Fatal("send past the burst allowed")
	}
	time.Sleep(60 * time.Millisecond) // at 20/s, at least one token back
	if !u.allowSend() {
		t.Fatal("send refused after the bucket refilled")
	}
	for range 1000 {
		if !u.allowRequest() {
			t.Fatal("a negative rate limits")
		}
	}
}
