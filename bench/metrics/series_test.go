package metrics

import (
	"slices"
	"sync"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0) // a multiple of 5 s

type event struct {
	at  time.Time
	lat time.Duration
}

// events spreads latencies over the seconds [first, first+span).
func events(seed uint64, first, span int) []event {
	lats := latencies(seed, 4000)
	out := make([]event, len(lats))
	for i, d := range lats {
		out[i] = event{t0.Add(time.Duration(first+i%span)*time.Second + time.Duration(i)*time.Microsecond), d}
	}
	return out
}

func TestSeriesMergeBySecond(t *testing.T) {
	for _, interval := range []time.Duration{time.Second, 5 * time.Second} {
		t.Run(interval.String(), func(t *testing.T) {
			// Two workers overlap in seconds 3..7; worker b also counts sends
			// without latency, and gets stragglers for an old second.
			a, b, all := NewSeries(interval), NewSeries(interval), NewSeries(interval)
			evA, evB := events(1, 0, 8), events(2, 3, 9)
			for _, e := range evA {
				a.Record(e.at, e.lat)
				all.Record(e.at, e.lat)
			}
			for _, e := range evB {
				b.Record(e.at, e.lat)
				all.Record(e.at, e.lat)
			}
			for _, s := range []*Series{b, all} {
				s.Add(t0.Add(20*time.Second), 7)
				s.Add(t0.Add(4*time.Second), 3) // a straggler behind the stripes' intervals
			}

			merged := NewSeries(interval)
			for _, w := range []*Series{a, b} {
				d, err := w.Export()
				if err != nil {
					t.Fatal(err)
				}
				if err := merged.Merge(wire(t, d)); err != nil {
					t.Fatal(err)
				}
			}

			rates := merged.Rates()
			if !slices.Equal(rates, all.Rates()) {
				t.Fatalf("merged rates %v\n differ from combined %v", rates, all.Rates())
			}
			want := map[int64]int64{}
			for _, e := range append(evA, evB...) {
				want[e.at.Unix()]++
			}
			want[t0.Unix()+20] += 7
			want[t0.Unix()+4] += 3
			if rates[0].Unix != t0.Unix() || rates[len(rates)-1].Unix != t0.Unix()+20 || len(rates) != 21 {
				t.Fatalf("rates cover %d..%d (%d seconds), want %d..%d contiguous", rates[0].Unix, rates[len(rates)-1].Unix, len(rates), t0.Unix(), t0.Unix()+20)
			}
			for _, r := range rates {
				if r.Count != want[r.Unix] {
					t.Errorf("second %d: %d events, want %d", r.Unix-t0.Unix(), r.Count, want[r.Unix])
				}
			}

			lat := merged.Latencies()
			if !slices.Equal(lat, all.Latencies()) {
				t.Fatalf("merged latencies %v\n differ from combined %v", lat, all.Latencies())
			}
			step := int64(interval / time.Second)
			if n := int64(len(lat)); n != 12/step+min(1, 12%step) {
				t.Fatalf("%d latency intervals for 12 s of latencies", n)
			}
			var total int64
			for _, l := range lat {
				if l.Unix%step != 0 {
					t.Errorf("interval starts at %d, not a multiple of %d", l.Unix, step)
				}
				total += l.Count
			}
			if total != int64(len(evA)+len(evB)) {
				t.Fatalf("latency intervals hold %d values, want %d", total, len(evA)+len(evB))
			}
		})
	}
}

func TestSeriesIntervalMatchesRecorder(t *testing.T) {
	s, r := NewSeries(time.Minute), NewRecorder()
	for _, e := range events(3, 0, 30) {
		s.Record(e.at, e.lat)
		r.Record(e.lat)
	}
	lat := s.Latencies()
	if len(lat) != 1 {
		t.Fatalf("%d intervals, want 1", len(lat))
	}
	if lat[0].Snapshot != r.Snapshot() {
		t.Fatalf("interval snapshot %+v differs from recorder's %+v", lat[0].Snapshot, r.Snapshot())
	}
}

func TestSeriesConcurrentRecording(t *testing.T) {
	s := NewSeries(2 * time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			// Each goroutine walks through 10 s with some going back in time.
			for i := range 1000 {
				sec := (i / 100) + (g%3)*(i%2) - (g % 2)
				s.Record(t0.Add(time.Duration(sec)*time.Second), time.Millisecond)
				if i%250 == 0 {
					s.Rates() // reading while others record
				}
			}
		})
	}
	wg.Wait()
	var n int64
	for _, r := range s.Rates() {
		n += r.Count
	}
	var m int64
	for _, l := range s.Latencies() {
		m += l.Count
	}
	if n != 8000 || m != 8000 {
		t.Fatalf("%d events and %d latencies, want 8000", n, m)
	}
}

func TestSeriesMergeRejectsMismatch(t *testing.T) {
	s := NewSeries(time.Second)
	s.Record(t0, time.Millisecond)
	d, err := s.Export()
	if err != nil {
		t.Fatal(err)
	}
	if err := NewSeries(5 * time.Second).Merge(d); err == nil {
		t.Fatal("merging a 1 s series into a 5 s one succeeded")
	}
	bad := d
	bad.Intervals = []IntervalData{{Start: t0.Unix(), Counts: []int64{1}, Latency: "garbage"}}
	target := NewSeries(time.Second)
	if err := target.Merge(bad); err == nil {
		t.Fatal("merging a corrupt histogram succeeded")
	}
	if r := target.Rates(); len(r) != 0 {
		t.Fatalf("a failed merge left rates %v", r)
	}
}
