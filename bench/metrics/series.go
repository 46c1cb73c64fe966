package metrics

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Series counts events per wall-clock second and keeps a latency histogram
// per interval of whole seconds. Intervals start at Unix times that are
// multiples of the interval, so series from different workers line up. It
// is safe for concurrent use; the zero value is not usable.
type Series struct {
	interval int64 // seconds per histogram, ≥ 1
	stripes  *stripes[*current]

	mu   sync.Mutex // guards done; taken while holding a stripe, never the reverse
	done map[int64]*bucket
}

// bucket is one interval's data once it has left a stripe.
type bucket struct {
	counts []int64              // events per second from the interval's start
	hist   *hdr.PackedHistogram // nil while no latency was recorded
}

// current is the interval a stripe is recording into. It stays dense
// because a dense histogram records in nanoseconds where a packed one takes
// ~80 ns; finished intervals are packed, a few KiB instead of 136 KiB each.
type current struct {
	start  int64 // Unix second the interval starts at; 0 before the first record
	dirty  bool  // counts or hist hold data not yet flushed to done
	counts []int64
	hist   *hdr.Histogram
}

// NewSeries returns an empty Series whose latency histograms each cover
// interval, rounded down to whole seconds (at least one).
func NewSeries(interval time.Duration) *Series {
	secs := max(int64(interval/time.Second), 1)
	return &Series{
		interval: secs,
		stripes: newStripes(func() *current {
			return &current{counts: make([]int64, secs), hist: newHistogram()}
		}),
		done: make(map[int64]*bucket),
	}
}

// Record counts one event at t (usually time.Now() when it completed) with
// latency d, clamped as by Recorder.Record.
func (s *Series) Record(t time.Time, d time.Duration) { s.add(t, 1, micros(d)) }

// Add counts n events at t without a latency.
func (s *Series) Add(t time.Time, n int64) { s.add(t, n, -1) }

// add counts n events at t and, when us ≥ 0, records latency us.
func (s *Series) add(t time.Time, n, us int64) {
	sec := t.Unix()
	start := sec - sec%s.interval
	st := s.stripes.lock()
	defer s.stripes.unlock(st)
	c := st.v
	if start > c.start {
		s.flush(c)
		c.start = start
	}
	if start == c.start {
		c.dirty = true
		c.counts[sec-start] += n
		if us >= 0 {
			_ = c.hist.RecordValue(us) // in range by construction
		}
		return
	}
	// A straggler for an interval this stripe has already moved past.
	s.mu.Lock()
	b := s.bucket(start)
	b.counts[sec-start] += n
	if us >= 0 {
		_ = b.latency().RecordValue(us)
	}
	s.mu.Unlock()
}

// flush moves c's data into done, leaving c empty but on the same interval.
// The caller holds c's stripe.
func (s *Series) flush(c *current) {
	if !c.dirty {
		return
	}
	s.mu.Lock()
	b := s.bucket(c.start)
	for i, n := range c.counts {
		b.counts[i] += n
	}
	if c.hist.TotalCount() > 0 {
		b.latency().MergeFrom(c.hist)
		c.hist.Reset()
	}
	s.mu.Unlock()
	clear(c.counts)
	c.dirty = false
}

// bucket returns the interval starting at start, creating it. Caller holds mu.
func (s *Series) bucket(start int64) *bucket {
	b := s.done[start]
	if b == nil {
		b = &bucket{counts: make([]int64, s.interval)}
		s.done[start] = b
	}
	return b
}

func (b *bucket) latency() *hdr.PackedHistogram {
	if b.hist == nil {
		b.hist = newPacked()
	}
	return b.hist
}

// settled flushes every stripe and returns with mu held, the caller then
// reading done and unlocking.
func (s *Series) settled() {
	s.stripes.each(s.flush)
	s.mu.Lock()
}

// SeriesData is the transferable form of a Series.
type SeriesData struct {
	Interval  int64          `json:"interval_s"`
	Intervals []IntervalData `json:"intervals"`
}

// IntervalData is one interval of a SeriesData.
type IntervalData struct {
	Start   int64   `json:"start"`             // Unix second, a multiple of the interval
	Counts  []int64 `json:"counts"`            // events in each second from Start
	Latency Encoded `json:"latency,omitempty"` // empty when no latency was recorded
}

// Export returns everything recorded or merged so far, intervals in order.
func (s *Series) Export() (SeriesData, error) {
	s.settled()
	defer s.mu.Unlock()
	d := SeriesData{Interval: s.interval}
	for _, start := range slices.Sorted(maps.Keys(s.done)) {
		b := s.done[start]
		in := IntervalData{Start: start, Counts: slices.Clone(b.counts)}
		if b.hist != nil {
			enc, err := b.hist.Encode()
			if err != nil {
				return SeriesData{}, fmt.Errorf("encode interval %d: %w", start, err)
			}
			in.Latency = Encoded(enc)
		}
		d.Intervals = append(d.Intervals, in)
	}
	return d, nil
}

// Merge adds another Series' export, typically a worker's. It checks all of
// d before changing anything, so a bad d leaves s as it was.
func (s *Series) Merge(d SeriesData) error {
	if d.Interval != s.interval {
		return fmt.Errorf("merge series: interval %ds, want %ds", d.Interval, s.interval)
	}
	hists := make([]*hdr.PackedHistogram, len(d.Intervals))
	for i, in := range d.Intervals {
		if in.Start%s.interval != 0 || int64(len(in.Counts)) != s.interval {
			return fmt.Errorf("merge series: interval at %d with %d counts does not fit %ds intervals", in.Start, len(in.Counts), s.interval)
		}
		if in.Latency == "" {
			continue
		}
		p, err := in.Latency.decodePacked()
		if err != nil {
			return fmt.Errorf("merge series: interval %d: %w", in.Start, err)
		}
		hists[i] = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, in := range d.Intervals {
		b := s.bucket(in.Start)
		for j, n := range in.Counts {
			b.counts[j] += n
		}
		if hists[i] != nil {
			b.latency().Merge(hists[i])
		}
	}
	return nil
}

// Rate is the number of events in one wall-clock second.
type Rate struct {
	Unix  int64 `json:"unix"`
	Count int64 `json:"count"`
}

// Rates returns the events of every second from the first with any to the
// last with any, in order, so that a stall shows as zeros.
func (s *Series) Rates() []Rate {
	s.settled()
	defer s.mu.Unlock()
	var rates []Rate
	for _, start := range slices.Sorted(maps.Keys(s.done)) {
		for i, n := range s.done[start].counts {
			sec := start + int64(i)
			if len(rates) > 0 {
				// Fill seconds of intervals nobody recorded in.
				for last := rates[len(rates)-1].Unix; last+1 < sec; last++ {
					rates = append(rates, Rate{Unix: last + 1})
				}
			}
			if n != 0 || len(rates) > 0 {
				rates = append(rates, Rate{Unix: sec, Count: n})
			}
		}
	}
	for len(rates) > 0 && rates[len(rates)-1].Count == 0 {
		rates = rates[:len(rates)-1]
	}
	return rates
}

// Window summarises the latencies of the intervals starting in [from, to),
// Unix seconds: with one-second intervals, the events of those seconds.
func (s *Series) Window(from, to int64) Snapshot {
	s.settled()
	defer s.mu.Unlock()
	h := newPacked()
	for start, b := range s.done {
		if start >= from && start < to && b.hist != nil {
			h.Merge(b.hist)
		}
	}
	return snapshotOf(h)
}

// IntervalSnapshot summarises the latencies recorded in one interval.
type IntervalSnapshot struct {
	Unix int64 `json:"unix"` // the interval's start
	Snapshot
}

// Latencies returns a snapshot of every interval with latencies, in order.
func (s *Series) Latencies() []IntervalSnapshot {
	s.settled()
	defer s.mu.Unlock()
	var out []IntervalSnapshot
	for _, start := range slices.Sorted(maps.Keys(s.done)) {
		if h := s.done[start].hist; h != nil {
			out = append(out, IntervalSnapshot{Unix: start, Snapshot: snapshotOf(h)})
		}
	}
	return out
}
