package gateway

import (
	"testing"
	"time"
)

func TestUserLimitsBuckets(t *testing.T) {
	cfg := RateLimits{SendRate: 20, SendBurst: 3, RequestRate: -1}
	u := new(userLimits)
	for i := range 3 {
		if !u.allowSend(&cfg) {
			t.Fatalf("send %d of the burst refused", i+1)
		}
	}
	if u.allowSend(&cfg) {
		t.Fatal("send past the burst allowed")
	}
	time.Sleep(60 * time.Millisecond) // at 20/s, at least one token back
	if !u.allowSend(&cfg) {
		t.Fatal("send refused after the bucket refilled")
	}
	for range 1000 {
		if !u.allowRequest(&cfg) {
			t.Fatal("a negative rate limits")
		}
	}
}
