package ratelimit

import (
	"testing"
	"time"
)

func TestUserLimitsBuckets(t *testing.T) {
	cfg := Config{SendRate: 20, SendBurst: 3, RequestRate: -1}
	u := new(User)
	for i := range 3 {
		if !u.AllowSend(&cfg) {
			t.Fatalf("send %d of the burst refused", i+1)
		}
	}
	if u.AllowSend(&cfg) {
		t.Fatal("send past the burst allowed")
	}
	time.Sleep(60 * time.Millisecond) // at 20/s, at least one token back
	if !u.AllowSend(&cfg) {
		t.Fatal("send refused after the bucket refilled")
	}
	for range 1000 {
		if !u.AllowRequest(&cfg) {
			t.Fatal("a negative rate limits")
		}
	}
}
