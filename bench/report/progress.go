package report

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ProgressStats are the running figures Progress shows. Counts are totals
// so far; Progress turns Sent and Delivered into rates.
type ProgressStats struct {
	Sent, Delivered             uint64
	P99                         time.Duration // send→deliver, recent or overall
	Lost, Duplicated, Reordered uint64
}

// Progress prints a status line to stderr while a run goes on: rewritten in
// place every second on a terminal, a plain line every 5 s otherwise, so
// logs stay readable.
type Progress struct {
	w     io.Writer
	tty   bool
	stats func() ProgressStats
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu     sync.Mutex // guards the previous reading, used by the loop and Stop
	prev   ProgressStats
	prevAt time.Time
}

// StartProgress starts printing; stats is called once per line, from
// another goroutine.
func StartProgress(stats func() ProgressStats) *Progress {
	tty := isTerminal(os.Stderr)
	every := 5 * time.Second
	if tty {
		every = time.Second
	}
	return startProgress(os.Stderr, tty, every, stats)
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func startProgress(w io.Writer, tty bool, every time.Duration, stats func() ProgressStats) *Progress {
	now := time.Now()
	p := &Progress{w: w, tty: tty, stats: stats, start: now, prevAt: now, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				p.print("")
			}
		}
	}()
	return p
}

// Stop prints a last line and ends the output with a newline.
func (p *Progress) Stop() {
	close(p.stop)
	<-p.done
	end := ""
	if p.tty {
		end = "\n"
	}
	p.print(end)
}

// print writes one status line; on a terminal it replaces the previous one.
func (p *Progress) print(end string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now, s := time.Now(), p.stats()
	secs := now.Sub(p.prevAt).Seconds()
	rate := func(cur, prev uint64) float64 {
		if secs <= 0 || cur < prev {
			return 0
		}
		return float64(cur-prev) / secs
	}
	line := fmt.Sprintf("%6s  sent %s/s  delivered %s/s  p99 %s  lost %s  dup %s  reorder %s",
		now.Sub(p.start).Round(time.Second), num(rate(s.Sent, p.prev.Sent)), num(rate(s.Delivered, p.prev.Delivered)),
		dur(s.P99), num(float64(s.Lost)), num(float64(s.Duplicated)), num(float64(s.Reordered)))
	p.prev, p.prevAt = s, now
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K%s", line, end) // \x1b[K clears what a longer line left
	} else {
		fmt.Fprintln(p.w, line)
	}
}
