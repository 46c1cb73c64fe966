package metrics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// latencies returns n log-normal latencies around 2 ms with a long tail,
// reproducible from seed.
func latencies(seed uint64, n int) []time.Duration {
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(math.Exp(r.NormFloat64()*1.2) * float64(2*time.Millisecond))
	}
	return out
}

// recordConcurrently records samples from several goroutines at once.
func recordConcurrently(r *Recorder, samples []time.Duration) {
	var wg sync.WaitGroup
	const goroutines = 8
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < len(samples); i += goroutines {
				r.Record(samples[i])
			}
		})
	}
	wg.Wait()
}

// wire sends e through JSON, as a worker's report does.
func wire[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMergeOfWorkersEqualsAllSamples(t *testing.T) {
	all := NewRecorder()
	coordinator := NewRecorder()
	var every []time.Duration
	for w := range 3 {
		samples := latencies(uint64(w+1), 50_000+w*10_000)
		every = append(every, samples...)
		worker := NewRecorder()
		recordConcurrently(worker, samples)
		enc, err := worker.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := coordinator.Merge(wire(t, enc)); err != nil {
			t.Fatal(err)
		}
	}
	recordConcurrently(all, every)

	merged, combined := coordinator.Snapshot(), all.Snapshot()
	if merged != combined {
		t.Fatalf("merged snapshot %+v\n differs from combined %+v", merged, combined)
	}
	if merged.Count != int64(len(every)) {
		t.Fatalf("count %d, want %d", merged.Count, len(every))
	}
	if !coordinator.merged().Equals(all.merged()) {
		t.Fatal("merged histogram's buckets differ from the combined one's")
	}

	// The percentiles are those of the raw samples (HdrHistogram's rank is
	// round(q·n), clamped to 1..n) within 3 significant digits and the
	// microsecond resolution.
	slices.Sort(every)
	for _, c := range []struct {
		q   float64
		got time.Duration
	}{{50, merged.P50}, {90, merged.P90}, {99, merged.P99}, {99.9, merged.P999}, {100, merged.Max}} {
		rank := min(max(int(c.q/100*float64(len(every))+0.5), 1), len(every))
		want := every[rank-1].Truncate(time.Microsecond)
		if diff := (c.got - want).Abs(); float64(diff) > float64(want)/1000+float64(time.Microsecond) {
			t.Errorf("p%v = %v, raw samples give %v", c.q, c.got, want)
		}
	}
	if min := every[0].Truncate(time.Microsecond); (merged.Min - min).Abs() > min/1000+time.Microsecond {
		t.Errorf("min = %v, raw samples give %v", merged.Min, min)
	}
}

func TestEncodedRoundTrip(t *testing.T) {
	r := NewRecorder()
	for _, d := range latencies(7, 20_000) {
		r.Record(d)
	}
	enc, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back := NewRecorder()
	if err := back.Merge(wire(t, enc)); err != nil {
		t.Fatal(err)
	}
	if got, want := back.Snapshot(), r.Snapshot(); got != want {
		t.Fatalf("round trip snapshot %+v, want %+v", got, want)
	}
	again, err := back.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if again != enc {
		t.Fatal("re-encoding the decoded histogram gives different bytes")
	}
	if len(enc) > 8<<10 {
		t.Errorf("encoded histogram is %d bytes; expected a compact form", len(enc))
	}
}

func TestMergeRejectsBadInput(t *testing.T) {
	other, err := hdr.New(1, 1000, 2).Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRecorder()
	for _, e := range []Encoded{"not a histogram", Encoded(other)} {
		if err := r.Merge(e); err == nil {
			t.Errorf("Merge(%.20q) succeeded", e)
		}
	}
	if s := r.Snapshot(); s.Count != 0 {
		t.Fatalf("failed merges recorded %d values", s.Count)
	}
}

func TestRecordClampsOutOfRange(t *testing.T) {
	r := NewRecorder()
	r.Record(-time.Second)
	r.Record(2 * time.Minute)
	s := r.Snapshot()
	if s.Count != 2 || s.Min != 0 {
		t.Fatalf("snapshot %+v: want 2 values, min 0", s)
	}
	if s.Max < 59*time.Second || s.Max > 61*time.Second {
		t.Fatalf("max %v, want the 60 s ceiling", s.Max)
	}
}

func TestEmptySnapshot(t *testing.T) {
	if s := NewRecorder().Snapshot(); s != (Snapshot{}) {
		t.Fatalf("empty recorder snapshot %+v", s)
	}
}
