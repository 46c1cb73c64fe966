package report

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockedBuffer is written by Progress's goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var progressLine = regexp.MustCompile(`^ *\d+s  sent [\d,.]+/s  delivered [\d,.]+/s  p99 12\.3ms  lost 1  dup 2  reorder 3$`)

func runProgress(t *testing.T, tty bool) string {
	t.Helper()
	var out lockedBuffer
	var calls atomic.Uint64
	p := startProgress(&out, tty, 10*time.Millisecond, func() ProgressStats {
		n := calls.Add(1)
		return ProgressStats{Sent: n * 100, Delivered: n * 1000, P99: 12300 * time.Microsecond, Lost: 1, Duplicated: 2, Reordered: 3}
	})
	for deadline := time.Now().Add(10 * time.Second); calls.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats read %d times in 10 s at a 10 ms interval", calls.Load())
		}
	}
	p.Stop()
	return out.String()
}

func TestProgressPlain(t *testing.T) {
	out := runProgress(t, false)
	if strings.ContainsAny(out, "\r\x1b") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("plain output has terminal controls or no final newline: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("%d lines, want one per interval and one at Stop: %q", len(lines), out)
	}
	for _, l := range lines {
		if !progressLine.MatchString(l) {
			t.Errorf("line %q", l)
		}
	}
	if strings.Contains(lines[1], "sent 0/s") {
		t.Errorf("rate of a growing count is 0: %q", lines[1])
	}
}

func TestProgressTerminal(t *testing.T) {
	out := runProgress(t, true)
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("terminal output should rewrite one line and end it at Stop: %q", out)
	}
	updates := strings.Split(strings.TrimPrefix(strings.TrimSuffix(out, "\n"), "\r"), "\r")
	if len(updates) < 3 {
		t.Fatalf("%d updates: %q", len(updates), out)
	}
	for _, u := range updates {
		line, ok := strings.CutSuffix(u, "\x1b[K")
		if !ok || !progressLine.MatchString(line) {
			t.Errorf("update %q", u)
		}
	}
}
