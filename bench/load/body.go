package load

import (
	"strconv"
	"strings"
	"time"
)

// Message bodies carry the time they were sent, so that any receiver, in
// any worker process on this machine, measures send→deliver against the
// same clock: "<unix ns> xxxx…", padded to the configured size.

// Body returns the text of a message sent at t, size bytes long (longer
// only when size cannot hold the timestamp).
func Body(t time.Time, size int) string {
	ts := strconv.FormatInt(t.UnixNano(), 10)
	if pad := size - len(ts) - 1; pad > 0 {
		return ts + " " + strings.Repeat("x", pad)
	}
	return ts
}

// SentAt reads the send time from a body made by Body.
func SentAt(text string) (time.Time, bool) {
	if i := strings.IndexByte(text, ' '); i >= 0 {
		text = text[:i]
	}
	ns, err := strconv.ParseInt(text, 10, 64)
	if err != nil || ns <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}
