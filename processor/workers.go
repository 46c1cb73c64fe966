package processor

import (
	"sync/atomic"
	"time"
)

// workerIdle is how long a worker waits for its next room before exiting.
const workerIdle = 2 * time.Second

// workers runs rooms' work on reused goroutines: work goes to an idle
// worker when there is one, else to a new goroutine, so there is never
// a bound (a room stalled on the store holds up no other room). A
// goroutine whose stack grew through the CHAT_MSG append keeps it for its
// next room, instead of each room's burst starting a fresh goroutine and
// growing its stack again.
type workers struct {
	handoff chan func() // unbuffered: a send succeeds only to an idle worker
	started atomic.Uint64
}

func newWorkers() *workers { return &workers{handoff: make(chan func())} }

// run runs f on an idle worker or a new one.
func (w *workers) run(f func()) {
	select {
	case w.handoff <- f:
	default:
		w.started.Add(1)
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-w.handoff:
		case <-idle.C:
			return
		}
	}
}
