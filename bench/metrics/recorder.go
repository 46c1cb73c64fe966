package metrics

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Recorder is a latency histogram safe for use by many goroutines at once.
// The zero value is not usable; call NewRecorder.
type Recorder struct {
	stripes *stripes[*hdr.Histogram]
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{stripes: newStripes(newHistogram)} }

// Record adds one latency. Values are kept in whole microseconds; negative
// values count as 0 and values above 60 s as 60 s.
func (r *Recorder) Record(d time.Duration) {
	st := r.stripes.lock()
	// The value is in range by construction, so RecordValue cannot fail.
	_ = st.v.RecordValue(micros(d))
	r.stripes.unlock(st)
}

// merged returns a new histogram holding everything recorded so far.
func (r *Recorder) merged() *hdr.Histogram {
	h := newHistogram()
	r.stripes.each(func(s *hdr.Histogram) { h.Merge(s) })
	return h
}

// Snapshot summarises everything recorded or merged so far.
func (r *Recorder) Snapshot() Snapshot { return snapshotOf(r.merged()) }

// Encode returns everything recorded so far in transferable form.
func (r *Recorder) Encode() (Encoded, error) {
	b, err := r.merged().Encode(hdr.V2CompressedEncodingCookieBase)
	return Encoded(b), err
}

// Merge adds a histogram encoded by another Recorder, typically a worker's.
func (r *Recorder) Merge(e Encoded) error {
	p, err := e.decodePacked()
	if err != nil {
		return err
	}
	st := r.stripes.lock()
	p.MergeInto(st.v)
	r.stripes.unlock(st)
	return nil
}
