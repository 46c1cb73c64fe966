package load

import (
	"context"
	"time"
)

// backoff is the wait before retry attempt+1: base doubling per attempt,
// at most maxBackoff.
func backoff(base time.Duration, attempt int) time.Duration {
	return min(base<<min(attempt-1, 10), maxBackoff)
}

// Sleep waits d, reporting false if ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
