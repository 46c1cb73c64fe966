package metrics

import (
	"fmt"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// The one histogram geometry used everywhere: merging needs identical
// geometries to be exact, so it is fixed rather than configurable.
const (
	lowestMicros  = 1
	highestMicros = int64(60 * time.Second / time.Microsecond)
	sigFigs       = 3
)

func newHistogram() *hdr.Histogram { return hdr.New(lowestMicros, highestMicros, sigFigs) }

func newPacked() *hdr.PackedHistogram { return hdr.NewPacked(lowestMicros, highestMicros, sigFigs) }

// micros is the value recorded for d: whole microseconds, clamped into the
// trackable range so that an absurd latency (negative after a clock step, or
// beyond 60 s) is still counted, at the edge, instead of silently dropped.
func micros(d time.Duration) int64 {
	return min(max(d.Microseconds(), 0), highestMicros)
}

// Snapshot summarises a histogram. Durations are multiples of a microsecond;
// percentiles are the highest value equivalent to the recorded ones within
// the histogram's precision.
type Snapshot struct {
	Count int64         `json:"count"`
	Min   time.Duration `json:"min_ns"`
	Max   time.Duration `json:"max_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
}

// quantiles is what Snapshot needs; both the dense and the packed histogram
// provide it.
type quantiles interface {
	TotalCount() int64
	Min() int64
	Max() int64
	Mean() float64
	ValueAtPercentile(float64) int64
}

func snapshotOf(h quantiles) Snapshot {
	if h.TotalCount() == 0 {
		return Snapshot{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Snapshot{
		Count: h.TotalCount(),
		Min:   us(h.Min()),
		Max:   us(h.Max()),
		Mean:  time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:   us(h.ValueAtPercentile(50)),
		P90:   us(h.ValueAtPercentile(90)),
		P99:   us(h.ValueAtPercentile(99)),
		P999:  us(h.ValueAtPercentile(99.9)),
	}
}

// Encoded is a histogram in the HdrHistogram V2 compressed format, base64
// encoded: a plain string in JSON.
type Encoded string

// decodePacked decodes e, refusing histograms of another geometry: their
// buckets differ from ours, so merging them could not be exact.
func (e Encoded) decodePacked() (*hdr.PackedHistogram, error) {
	p, err := hdr.DecodePacked([]byte(e))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	if p.LowestTrackableValue() != lowestMicros || p.HighestTrackableValue() != highestMicros || p.SignificantFigures() != sigFigs {
		return nil, fmt.Errorf("decode histogram: geometry %d..%d/%d, want %d..%d/%d",
			p.LowestTrackableValue(), p.HighestTrackableValue(), p.SignificantFigures(), lowestMicros, highestMicros, sigFigs)
	}
	return p, nil
}
