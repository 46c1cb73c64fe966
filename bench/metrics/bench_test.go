package metrics

import (
	"sync"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

func BenchmarkRecorderRecord(b *testing.B) {
	r := NewRecorder()
	lats := latencies(1, 4096)
	i := 0
	for b.Loop() {
		r.Record(lats[i&4095])
		i++
	}
}

// mutexRecorder is the simple alternative to striping, for comparison.
type mutexRecorder struct {
	mu sync.Mutex
	h  *hdr.Histogram
}

func (m *mutexRecorder) Record(d time.Duration) {
	m.mu.Lock()
	_ = m.h.RecordValue(micros(d))
	m.mu.Unlock()
}

func BenchmarkRecorderParallel(b *testing.B) {
	for _, c := range []struct {
		name string
		r    interface{ Record(time.Duration) }
	}{
		{"striped", NewRecorder()},
		{"one-mutex", &mutexRecorder{h: newHistogram()}},
	} {
		b.Run(c.name, func(b *testing.B) {
			lats := latencies(1, 4096)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					c.r.Record(lats[i&4095])
					i++
				}
			})
		})
	}
}

func BenchmarkSeriesRecordParallel(b *testing.B) {
	s := NewSeries(time.Second)
	lats := latencies(1, 4096)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Record(time.Now(), lats[i&4095])
			i++
		}
	})
}
