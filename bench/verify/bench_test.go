package verify

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkDeliver is the per-delivery cost on the common, in-order path,
// each message new to its room.
func BenchmarkDeliver(b *testing.B) {
	s := New().Open("u", "r", 1)
	seq := uint64(0)
	for b.Loop() {
		seq++
		s.Deliver(seq, "sender", strconv.FormatUint(seq, 10))
	}
}

// BenchmarkDeliverParallel delivers to many streams from all CPUs, as a
// worker's connection readers do.
func BenchmarkDeliverParallel(b *testing.B) {
	v := New()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		streams := make([]*Stream, 64)
		g := next.Add(1)
		for i := range streams {
			streams[i] = v.Open(fmt.Sprintf("u%d-%d", g, i), "r", 1)
		}
		seqs := make([]uint64, len(streams))
		i := 0
		for pb.Next() {
			k := i % len(streams)
			seqs[k]++
			streams[k].Deliver(seqs[k], "sender", strconv.FormatUint(seqs[k], 10))
			i++
		}
	})
}
