package reactor

import (
	"slices"
	"testing"
)

func TestWheelFilesEntriesWithinOneRevolution(t *testing.T) {
	w := newWheel(5, 100) // 8 buckets
	a, b, c := job{fd: 1}, job{fd: 2}, job{fd: 3}
	if got := w.add(90, a); got != 101 {
		t.Fatalf("a past tick was filed at %d, want the next one", got)
	}
	if got := w.add(103, b); got != 103 {
		t.Fatalf("filed at %d", got)
	}
	if got := w.add(500, c); got != 107 {
		t.Fatalf("a tick beyond one revolution was filed at %d, want 107", got)
	}
	for tick := uint32(101); tick <= 108; tick++ {
		got := w.take(tick)
		var want []job
		switch tick {
		case 101:
			want = []job{a}
		case 103:
			want = []job{b}
		case 107:
			want = []job{c}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("tick %d: %v, want %v", tick, got, want)
		}
	}
}

func TestTicksCompareAcrossWrap(t *testing.T) {
	const top = ^uint32(0)
	if !before(top, 1) || before(1, top) || !reached(2, top) || earliest(top, 3) != top {
		t.Fatal("tick order breaks at wraparound")
	}
}

func TestRunQueueFIFO(t *testing.T) {
	q := newRunQueue()
	for i := range 3000 {
		q.push(job{fd: int32(i)})
	}
	q.close()
	for i := range 3000 {
		if j, ok := q.pop(); !ok || j.fd != int32(i) {
			t.Fatalf("pop %d: %v %v", i, j, ok)
		}
	}
	if _, ok := q.pop(); ok {
		t.Fatal("pop after close and drain")
	}
}
