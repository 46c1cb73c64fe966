package processor

import (
	"sync"
	"testing"
	"time"
)

// Work never waits for a worker: with every worker blocked, new work
// still runs; and finished workers take the next work instead of new
// goroutines being started.
func TestWorkers(t *testing.T) {
	w := newWorkers()
	block := make(chan struct{})
	var blocked sync.WaitGroup
	for range 8 {
		blocked.Add(1)
		w.run(func() { blocked.Done(); <-block })
	}
	blocked.Wait()
	done := make(chan struct{})
	w.run(func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("work waited for a blocked worker")
	}
	close(block)

	// Sequential work is handed to the idle workers: no more goroutines.
	time.Sleep(50 * time.Millisecond) // the workers above are idle now
	before := w.started.Load()
	var ran sync.WaitGroup
	for range 100 {
		ran.Add(1)
		w.run(ran.Done)
		ran.Wait()
		time.Sleep(time.Millisecond) // its worker is back waiting
	}
	if n := w.started.Load() - before; n > 0 {
		t.Errorf("%d goroutines started for sequential work, want 0", n)
	}
}
