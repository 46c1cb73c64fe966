package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/verify"
	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

func TestBodyCarriesSendTime(t *testing.T) {
	at := time.Unix(1_763_900_000, 123_456_789)
	for _, size := range []int{0, 10, 100, 4096} {
		b := Body(at, size)
		if size > 20 && len(b) != size {
			t.Errorf("size %d: body of %d bytes", size, len(b))
		}
		got, ok := SentAt(b)
		if !ok || !got.Equal(at) {
			t.Errorf("size %d: SentAt(%.30q) = %v, %v", size, b, got, ok)
		}
	}
	for _, bad := range []string{"", "hello", "-5 x", " 12"} {
		if _, ok := SentAt(bad); ok {
			t.Errorf("SentAt(%q) found a time", bad)
		}
	}
}

func TestPaceKeepsRateAndLimit(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	var dues []time.Time
	pace(ctx, start, start.Add(200*time.Millisecond), 500, 0, func(i int, due time.Time) bool {
		if i != len(dues) {
			t.Fatalf("call %d out of order", i)
		}
		dues = append(dues, due)
		return true
	})
	// Events are due at i/500 s for i/500 < 0.2: 100, less the last few
	// that a late final tick may miss.
	if len(dues) < 90 || len(dues) > 100 {
		t.Fatalf("%d calls at 500/s for 200 ms", len(dues))
	}
	for i, d := range dues {
		if want := start.Add(time.Duration(i) * 2 * time.Millisecond); !d.Equal(want) {
			t.Fatalf("call %d due %v after start, want %v", i, d.Sub(start), want.Sub(start))
		}
	}

	n := 0
	pace(ctx, time.Now(), time.Now().Add(time.Minute), 1000, 7, func(int, time.Time) bool { n++; return true })
	if n != 7 {
		t.Fatalf("%d calls with a limit of 7", n)
	}
	n = 0
	pace(ctx, time.Now(), time.Now().Add(time.Minute), 1000, 0, func(int, time.Time) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("%d calls after fn said stop at the third", n)
	}
}

// workerReport makes a report as a worker would, through JSON.
func workerReport(t *testing.T, sent, delivered int, lat time.Duration, fan []FanoutPoint, room string, receiver string) Report {
	t.Helper()
	m := newMeasure()
	v := verify.New()
	r := v.Room(room)
	s := v.Open(receiver, room, 1)
	for i := range sent {
		r.Sent()
		r.Acked(uint64(i + 1))
		m.add(Sent, 1)
		m.latency[SendAck].Record(lat)
	}
	for i := range delivered {
		s.Deliver(uint64(i+1), "sender", fmt.Sprint(i))
		m.add(Delivered, 1)
		m.latency[SendDeliver].Record(lat)
		m.series[SeriesDelivered].Record(time.Unix(1_763_900_000+int64(i), 0), lat)
	}
	m.errors.add("send: timeout", errors.New("first"))
	sum := v.Summary()
	rep := Report{Counts: map[string]uint64{}, Latencies: map[string]metrics.Encoded{}, Series: map[string]metrics.SeriesData{}, Errors: m.errors.export(), Fanout: fan, Verify: &sum}
	for c := range numCounters {
		if n := m.count(c); n > 0 {
			rep.Counts[c.String()] = n
		}
	}
	for _, name := range []string{SendAck, SendDeliver} {
		if rep.Latencies[name], _ = m.latency[name].Encode(); rep.Latencies[name] == "" {
			t.Fatal("encode")
		}
	}
	rep.Series[SeriesDelivered], _ = m.series[SeriesDelivered].Export()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var out Report
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAggregateMergesWorkers(t *testing.T) {
	// Worker a sends 5 messages to room r and receives them; worker b
	// holds another member of r, which got only 3 of the 5.
	a := workerReport(t, 5, 5, time.Millisecond, []FanoutPoint{{Room: "r", Seq: 1, SentAt: 100, Last: 150, Receivers: 1}}, "r", "alice")
	b := workerReport(t, 0, 3, 3*time.Millisecond, []FanoutPoint{{Room: "r", Seq: 1, SentAt: 100, Last: 190, Receivers: 1}}, "r", "bob")
	agg := NewAggregate()
	for _, r := range []Report{a, b} {
		if err := agg.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if agg.Count(Sent) != 5 || agg.Count(Delivered) != 8 {
		t.Fatalf("counts %v", agg.Counts)
	}
	if e := agg.Errors["send: timeout"]; e.Count != 2 || e.Example != "first" || agg.ErrorTotal() != 2 {
		t.Fatalf("errors %v", agg.Errors)
	}
	// Within the histograms' 3 significant digits.
	if s := agg.Latency(SendDeliver); s.Count != 8 || s.Max < 3*time.Millisecond || s.Max > 3010*time.Microsecond || s.Min != time.Millisecond {
		t.Fatalf("send→deliver %+v", s)
	}
	var perSecond int64
	for _, r := range agg.Series(SeriesDelivered).Rates() {
		perSecond += r.Count
	}
	if perSecond != 8 {
		t.Fatalf("series counts %d deliveries", perSecond)
	}
	if f := agg.Fanout(); len(f) != 1 || f[0].Receivers != 2 || f[0].Last != 190 {
		t.Fatalf("fanout %+v", f)
	}
	// Lost needs both workers: only the merged summary knows bob missed
	// seqs 4 and 5 of the 5 that alice's worker saw acked.
	if tot := agg.Verify.Totals(); tot.Lost != 2 || tot.Receivers != 2 || tot.Delivered != 8 {
		t.Fatalf("verify totals %+v", tot)
	}
	if err := agg.Add(Report{Latencies: map[string]metrics.Encoded{"nope": ""}}); err == nil {
		t.Fatal("an unknown latency merged")
	}
}

func TestErrorClass(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&client.ServerError{Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE}, "send: ERROR_CODE_UNAVAILABLE"},
		{fmt.Errorf("client: connection closed: %w", wsutil.ClosedError{Code: ws.StatusPolicyViolation}), "send: closed 1008"},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), "send: timeout"},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "send: connection refused"},
		{errors.New("something else"), "send: other"},
	} {
		if got := errorClass("send", c.err); got != c.want {
			t.Errorf("errorClass(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if retryable(&client.ServerError{Code: pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND}) || !retryable(&client.ServerError{Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE}) || !retryable(errors.New("connection closed")) {
		t.Fatal("retryable misjudges")
	}
}
