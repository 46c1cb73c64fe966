package reactor

import "sync"

// job names a connection whose messages (or close) a worker should run.
type job struct {
	fd  int32
	gen uint32
}

// runQueue is the workers' FIFO of connections with work. push never
// blocks, because pollers push; a connection is in it at most once at a
// time (its slot's scheduled flag), so it holds at most one job per
// connection.
type runQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	jobs   []job
	head   int
	closed bool
}

func newRunQueue() *runQueue {
	q := &runQueue{}
	q.cond.L = &q.mu
	return q
}

func (q *runQueue) push(j job) {
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop waits for a job; false means the queue is closed and empty.
func (q *runQueue) pop() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.jobs) {
		if q.closed {
			return job{}, false
		}
		q.cond.Wait()
	}
	j := q.jobs[q.head]
	q.head++
	if q.head == len(q.jobs) {
		q.jobs, q.head = q.jobs[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.jobs) {
		q.jobs, q.head = append(q.jobs[:0], q.jobs[q.head:]...), 0
	}
	return j, true
}

// close lets workers exit once the queue is empty.
func (q *runQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// wheel is a hashed timer wheel of one-tick buckets. Each connection has
// one live entry, at the tick of its next check (heartbeat, idle, write
// stall or close deadline), instead of a runtime timer; entries whose
// tick no longer matches their slot's are stale and skipped.
type wheel struct {
	mu      sync.Mutex
	buckets [][]job
	done    uint32 // the last tick taken; later adds go after it
}

// newWheel makes a wheel of at least size buckets; a power of two, so that
// tick % len stays continuous when ticks wrap.
func newWheel(size int, now uint32) *wheel {
	n := 1
	for n < size {
		n <<= 1
	}
	return &wheel{buckets: make([][]job, n), done: now}
}

// add files j at tick due, moved into (done, done+len(buckets)) so that
// it is neither missed nor taken a revolution early, and returns the tick
// it was filed at. Firing early is harmless: the check reschedules.
func (w *wheel) add(due uint32, j job) uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if before(due, w.done+1) {
		due = w.done + 1
	}
	if last := w.done + uint32(len(w.buckets)) - 1; before(last, due) {
		due = last
	}
	b := &w.buckets[due%uint32(len(w.buckets))]
	*b = append(*b, j)
	return due
}

// take removes and returns the entries of tick t, the tick after done.
func (w *wheel) take(t uint32) []job {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = t
	i := t % uint32(len(w.buckets))
	b := w.buckets[i]
	w.buckets[i] = nil
	return b
}

// Ticks count up from 1 and are compared as a sequence that may wrap.
func before(a, b uint32) bool    { return int32(a-b) < 0 }
func reached(now, t uint32) bool { return int32(now-t) >= 0 }

func earliest(a, b uint32) uint32 {
	if before(b, a) {
		return b
	}
	return a
}
