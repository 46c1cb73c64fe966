package metrics

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// stripes spreads concurrent writers over independently locked copies of a
// value, one per P, so writers on different CPUs neither wait on one lock
// nor bounce one histogram's cache lines between them. Readers lock each
// stripe in turn and combine.
//
// A sync.Pool hands each P its own stripe cheaply. The pool only caches
// pointers into all: when it drops them (it may, at any GC) New hands out
// the next stripe round-robin, so no stripe and no data are ever lost, and
// two writers sharing a stripe for a while are still correct, only slower.
// BenchmarkRecorderParallel measures this against a single mutex.
type stripes[T any] struct {
	all  []*stripe[T]
	next atomic.Uint32
	pool sync.Pool // of *stripe[T]
}

type stripe[T any] struct {
	sync.Mutex
	v T
	_ [128 - 16]byte // with the Mutex and a pointer v: one stripe per pair of cache lines, no false sharing
}

func newStripes[T any](init func() T) *stripes[T] {
	s := &stripes[T]{all: make([]*stripe[T], runtime.GOMAXPROCS(0))}
	for i := range s.all {
		s.all[i] = &stripe[T]{v: init()}
	}
	s.pool.New = func() any { return s.all[int(s.next.Add(1))%len(s.all)] }
	return s
}

// lock returns this P's stripe, locked; release it with unlock.
func (s *stripes[T]) lock() *stripe[T] {
	st := s.pool.Get().(*stripe[T])
	st.Lock()
	return st
}

func (s *stripes[T]) unlock(st *stripe[T]) {
	st.Unlock()
	s.pool.Put(st)
}

// each calls f with every stripe's value, holding that stripe's lock.
func (s *stripes[T]) each(f func(T)) {
	for _, st := range s.all {
		st.Lock()
		f(st.v)
		st.Unlock()
	}
}
