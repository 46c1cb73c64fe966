package verify

import (
	"cmp"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// testSender sends every message of the tests that name no sender.
const testSender = "s"

// deliver hands seqs to s, with client_msg_ids derived from them.
func deliver(s *Stream, seqs ...uint64) {
	for _, q := range seqs {
		s.Deliver(q, testSender, fmt.Sprintf("m%d", q))
	}
}

// seqRange returns from..to inclusive.
func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for q := from; q <= to; q++ {
		out = append(out, q)
	}
	return out
}

// sendAll records n messages sent to and acked in room.
func sendAll(v *Verifier, room string, n uint64) {
	r := v.Room(room)
	for q := uint64(1); q <= n; q++ {
		r.Sent()
		r.Acked(q)
	}
}

func TestCleanDeliveries(t *testing.T) {
	// 4 rooms × 25 receivers × 1,000 messages = 100,000 deliveries, from 100
	// goroutines at once, read while they run.
	const rooms, perRoom, msgs = 4, 25, 1000
	v := New()
	var wg sync.WaitGroup
	for r := range rooms {
		room := fmt.Sprintf("room-%d", r)
		wg.Go(func() { sendAll(v, room, msgs) })
		for u := range perRoom {
			s := v.Open(fmt.Sprintf("user-%d", u), room, 1)
			wg.Go(func() { deliver(s, seqRange(1, msgs)...) })
		}
	}
	for range 10 {
		_ = v.Summary()
		_ = v.Live()
	}
	wg.Wait()

	sum := v.Summary()
	got := sum.Totals()
	want := Totals{Rooms: rooms, Receivers: rooms * perRoom, Sent: rooms * msgs, Acked: rooms * msgs, Delivered: rooms * perRoom * msgs}
	if got != want {
		t.Fatalf("totals %+v\n want %+v", got, want)
	}
	if !got.Clean() || v.Live() != (Live{}) || len(sum.Examples) != 0 {
		t.Fatalf("clean run reported anomalies: live %+v, examples %v", v.Live(), sum.Examples)
	}
	for _, r := range sum.Rooms {
		if want := []Missing{{From: msgs + 1, Receivers: perRoom}}; !slices.Equal(r.Missing, want) {
			t.Errorf("room %s: missing %v, want %v (everyone caught up)", r.Room, r.Missing, want)
		}
	}
}

// check runs one receiver's deliveries in a room with 10 acked messages.
func check(t *testing.T, from uint64, seqs ...uint64) (*Verifier, Totals) {
	t.Helper()
	v := New()
	sendAll(v, "r", 10)
	deliver(v.Open("u", "r", from), seqs...)
	sum := v.Summary()
	return v, sum.Totals()
}

func TestInjectedAnomalies(t *testing.T) {
	for _, c := range []struct {
		name string
		from uint64
		seqs []uint64
		want Totals // only the anomaly fields and Delivered
		live Live
		kind []Kind // the examples, in order
	}{
		{"clean", 1, seqRange(1, 10), Totals{Delivered: 10}, Live{}, nil},
		{"gap", 1, slices.Concat(seqRange(1, 10)[:6], seqRange(8, 10)),
			Totals{Delivered: 9, Gaps: 1, Lost: 1}, Live{Gaps: 1, Missing: 1}, []Kind{Gap}},
		{"duplicate", 1, slices.Concat(seqRange(1, 5), []uint64{3}, seqRange(6, 10)),
			Totals{Delivered: 10, Duplicated: 1}, Live{Duplicated: 1}, []Kind{Duplicated}},
		{"reorder", 1, []uint64{1, 2, 3, 4, 6, 5, 7, 8, 9, 10},
			Totals{Delivered: 10, Gaps: 1, Reordered: 1}, Live{Gaps: 1, Reordered: 1}, []Kind{Gap, Reordered}},
		{"lost tail", 1, seqRange(1, 7), Totals{Delivered: 7, Lost: 3}, Live{}, nil},
		{"lost head", 1, seqRange(4, 10), Totals{Delivered: 7, Gaps: 1, Lost: 3}, Live{Gaps: 1, Missing: 3}, []Kind{Gap}},
		{"late joiner", 6, seqRange(6, 10), Totals{Delivered: 5}, Live{}, nil},
		{"below start", 6, []uint64{6, 5, 7, 8, 9, 10},
			Totals{Delivered: 5, Reordered: 1}, Live{Reordered: 1}, []Kind{Reordered}},
		{"anchored at first", 0, seqRange(3, 10), Totals{Delivered: 8}, Live{}, nil},
		{"silent", 0, nil, Totals{Silent: 1}, Live{}, nil},
		{"beyond acked", 1, seqRange(1, 12), Totals{Delivered: 12}, Live{}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, got := check(t, c.from, c.seqs...)
			want := c.want
			want.Rooms, want.Receivers, want.Sent, want.Acked = 1, 1, 10, 10
			if got != want {
				t.Errorf("totals %+v\n want %+v", got, want)
			}
			if got.Clean() != (want.Lost|want.Duplicated|want.Reordered|want.Gaps|want.Silent == 0) {
				t.Errorf("Clean() = %v", got.Clean())
			}
			if l := v.Live(); l != c.live {
				t.Errorf("live %+v, want %+v", l, c.live)
			}
			var kinds []Kind
			for _, a := range v.Summary().Examples {
				kinds = append(kinds, a.Kind)
				if a.Receiver != "u" || a.Room != "r" || a.Sender != testSender || a.MsgID != fmt.Sprintf("m%d", a.Seq) {
					t.Errorf("example %+v does not describe the delivery", a)
				}
			}
			if !slices.Equal(kinds, c.kind) {
				t.Errorf("examples %v, want %v", kinds, c.kind)
			}
		})
	}
}

func TestGapExample(t *testing.T) {
	v, _ := check(t, 1, 1, 2, 3, 7)
	ex := v.Summary().Examples
	if want := (Anomaly{Kind: Gap, Receiver: "u", Room: "r", Seq: 7, Top: 3, Sender: testSender, MsgID: "m7"}); len(ex) != 1 || ex[0] != want {
		t.Fatalf("examples %+v, want [%+v]", ex, want)
	}
}

func TestHolesFillInAnyOrder(t *testing.T) {
	v := New()
	sendAll(v, "r", 20)
	s := v.Open("u", "r", 1)
	deliver(s, 1, 20, 10, 2, 19, 11, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18)
	if len(s.holes) != 0 {
		t.Fatalf("holes left after every seq arrived: %v", s.holes)
	}
	deliver(s, 10, 1, 20)
	got := v.Summary().Totals()
	if got.Lost != 0 || got.Delivered != 20 || got.Gaps != 1 || got.Reordered != 18 || got.Duplicated != 3 {
		t.Fatalf("totals %+v: want 20 delivered, 1 gap, 18 reordered, 3 duplicated, none lost", got)
	}
	if l := v.Live(); l.Missing != 0 {
		t.Fatalf("live missing %d after the holes filled", l.Missing)
	}
}

func TestReopenKeepsHistory(t *testing.T) {
	v := New()
	sendAll(v, "r", 6)
	s := v.Open("u", "r", 1)
	deliver(s, 1, 2, 3)
	// Reconnect: the resumed subscription replays 3 and skips 4.
	again := v.Open("u", "r", 0)
	if again != s {
		t.Fatal("reopening gave a new stream")
	}
	deliver(again, 3, 5, 6)
	got := v.Summary().Totals()
	if got.Receivers != 1 || got.Duplicated != 1 || got.Gaps != 1 || got.Lost != 1 {
		t.Fatalf("totals %+v: want 1 receiver, 1 duplicate, 1 gap, 1 lost", got)
	}
}

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

func TestMergeAcrossWorkers(t *testing.T) {
	// Worker a sends to room "x" and receives in "y"; worker b the reverse.
	// Neither alone knows how far the other's room went.
	a, b := New(), New()
	sendAll(a, "x", 10)
	sendAll(b, "y", 20)
	a.Room("y").Sent() // sent by a, never acked

	deliver(b.Open("b1", "x", 1), seqRange(1, 10)...)
	deliver(b.Open("b2", "x", 1), slices.Concat(seqRange(1, 6), seqRange(8, 9))...) // lost 7 and 10
	deliver(a.Open("a1", "y", 1), seqRange(1, 20)...)
	deliver(a.Open("a2", "y", 1), seqRange(1, 18)...)                   // lost 19 and 20
	deliver(a.Open("a3", "y", 11), []uint64{11, 12, 12, 14, 13, 15}...) // dup, gap, reorder, lost 16..20
	b.Open("b3", "y", 0)                                                // silent

	sa, sb := wire(t, a.Summary()), wire(t, b.Summary())
	if l := sb.Totals().Lost; l != 0 {
		t.Fatalf("worker b alone reports %d lost; it cannot know room x's acks", l)
	}

	var ab, ba Summary
	for _, m := range []struct {
		into  *Summary
		parts []Summary
	}{{&ab, []Summary{sa, sb}}, {&ba, []Summary{sb, sa}}} {
		for _, p := range m.parts {
			if err := m.into.Merge(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := Totals{Rooms: 2, Receivers: 6, Sent: 31, Acked: 30, Delivered: 10 + 8 + 20 + 18 + 5,
		Lost: 2 + 2 + 5, Duplicated: 1, Reordered: 1, Gaps: 2, Silent: 1}
	if got := ab.Totals(); got != want {
		t.Fatalf("merged totals %+v\n want %+v", got, want)
	}
	if got := ba.Totals(); got != want {
		t.Fatalf("merged in the other order: totals %+v", got)
	}
	x := ab.Rooms[0]
	if x.Room != "x" || x.Lost() != 2 || x.MaxAcked != 10 {
		t.Fatalf("room x %+v: want 2 lost below max acked 10", x)
	}
	wantMissing := []Missing{{From: 7, To: 7, Receivers: 1}, {From: 10, Receivers: 1}, {From: 11, Receivers: 1}}
	if !slices.Equal(x.Missing, wantMissing) {
		t.Fatalf("room x missing %v, want %v", x.Missing, wantMissing)
	}
	var kinds []Kind
	for _, a := range ab.Examples {
		kinds = append(kinds, a.Kind)
	}
	if want := []Kind{Duplicated, Gap, Reordered, Gap}; !slices.Equal(kinds, want) {
		t.Fatalf("merged examples %v, want worker a's then worker b's: %v", ab.Examples, want)
	}
	if err := ab.Merge(Summary{Version: SummaryVersion + 1}); err == nil {
		t.Fatal("merging a summary of another version succeeded")
	}
}

func TestMemoryPerStream(t *testing.T) {
	for _, c := range []struct{ receivers, rooms int }{{50_000, 1}, {10_000, 10}} {
		t.Run(fmt.Sprintf("%dx%d", c.receivers, c.rooms), func(t *testing.T) {
			names := make([]string, c.receivers)
			for i := range names {
				names[i] = fmt.Sprintf("user-%06d", i)
			}
			roomNames := make([]string, c.rooms)
			for i := range roomNames {
				roomNames[i] = fmt.Sprintf("room-%d", i)
			}
			before := heapInUse()
			v := New()
			for _, room := range roomNames {
				for _, u := range names {
					deliver(v.Open(u, room, 1), 1, 2, 3)
				}
			}
			perStream := float64(heapInUse()-before) / float64(c.receivers*c.rooms)
			runtime.KeepAlive(v)
			t.Logf("%.0f bytes per stream", perStream)
			if perStream > 400 {
				t.Fatalf("%.0f bytes per stream, want at most 400", perStream)
			}
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// stored is a message as the server stored it: a seq and the client
// message it holds.
type stored struct {
	seq uint64
	msg ClientMsg
}

// storedAt gives seqs 1, 2, … to msgs in turn.
func storedAt(msgs ...ClientMsg) []stored {
	out := make([]stored, len(msgs))
	for i, m := range msgs {
		out[i] = stored{uint64(i + 1), m}
	}
	return out
}

// deliverStored hands the messages to s in order.
func deliverStored(s *Stream, msgs []stored) {
	for _, m := range msgs {
		s.Deliver(m.seq, m.msg.Sender, m.msg.ID)
	}
}

func TestStoredTwice(t *testing.T) {
	a1, a2, a3 := ClientMsg{"a", "1"}, ClientMsg{"a", "2"}, ClientMsg{"a", "3"}
	for _, c := range []struct {
		name       string
		msgs       []stored
		want       []ClientMsg // stored twice
		duplicated uint64
	}{
		{"clean", storedAt(a1, a2, a3), nil, 0},
		{"stored twice", storedAt(a1, a2, a3, a2), []ClientMsg{a2}, 0},
		{"stored three times", storedAt(a1, a2, a2, a3, a2), []ClientMsg{a2}, 0},
		{"two stored twice", storedAt(a2, a1, a2, a1), []ClientMsg{a1, a2}, 0},
		{"same id, other senders", storedAt(a1, ClientMsg{"b", "1"}, ClientMsg{"c", "1"}), nil, 0},
		{"delivered twice, stored once", slices.Concat(storedAt(a1, a2), storedAt(a1)), nil, 2},
		{"no client_msg_id", storedAt(ClientMsg{"a", ""}, ClientMsg{"a", ""}), nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Two receivers see every copy: each stored-twice message counts once.
			v := New()
			sendAll(v, "r", slices.MaxFunc(c.msgs, func(x, y stored) int { return cmp.Compare(x.seq, y.seq) }).seq)
			for _, u := range []string{"u1", "u2"} {
				deliverStored(v.Open(u, "r", 1), c.msgs)
			}
			sum := wire(t, v.Summary())
			got := sum.Totals()
			if got.StoredTwice != uint64(len(c.want)) || !slices.Equal(sum.Rooms[0].StoredTwice, c.want) {
				t.Fatalf("stored twice: %d, %v; want %v", got.StoredTwice, sum.Rooms[0].StoredTwice, c.want)
			}
			if got.Duplicated != c.duplicated || got.Lost+got.Reordered+got.Gaps+got.Silent != 0 {
				t.Fatalf("totals %+v: want only %d duplicated besides", got, c.duplicated)
			}
			if got.Clean() != (len(c.want) == 0 && c.duplicated == 0) {
				t.Fatalf("Clean() = %v with totals %+v", got.Clean(), got)
			}
			var examples []Anomaly
			for _, a := range sum.Examples {
				if a.Kind == StoredTwice {
					examples = append(examples, a)
				}
			}
			if len(examples) != len(c.want) {
				t.Fatalf("examples %+v: want one per message stored twice", examples)
			}
		})
	}
}

func TestStoredTwiceExample(t *testing.T) {
	v := New()
	m := ClientMsg{"a", "1"}
	deliverStored(v.Open("u", "r", 1), storedAt(m, ClientMsg{"a", "2"}, m))
	want := Anomaly{Kind: StoredTwice, Receiver: "u", Room: "r", Seq: 3, Top: 2, Sender: "a", MsgID: "1", First: 1}
	if ex := wire(t, v.Summary()).Examples; len(ex) != 1 || ex[0] != want {
		t.Fatalf("examples %+v, want [%+v]", ex, want)
	}
}

func TestStoredTwiceAcrossWorkers(t *testing.T) {
	// Message 2 is stored at seqs 2 and 4, message 5 at seqs 5 and 7.
	// Worker a's receiver gets everything; worker b's loses seq 7, so only
	// worker a finds message 5.
	m := func(id string) ClientMsg { return ClientMsg{"x", id} }
	msgs := storedAt(m("1"), m("2"), m("3"), m("2"), m("5"), m("6"), m("5"))
	a, b := New(), New()
	sendAll(a, "r", 7)
	deliverStored(a.Open("a1", "r", 1), msgs)
	deliverStored(b.Open("b1", "r", 1), msgs[:6])
	deliverStored(b.Open("b2", "r", 1), msgs[:6])

	sa, sb := wire(t, a.Summary()), wire(t, b.Summary())
	if n := sb.Totals().StoredTwice; n != 1 {
		t.Fatalf("worker b alone finds %d stored twice, want 1", n)
	}
	for _, order := range [][]Summary{{sa, sb}, {sb, sa}} {
		var merged Summary
		for _, s := range order {
			if err := merged.Merge(s); err != nil {
				t.Fatal(err)
			}
		}
		got := merged.Totals()
		if want := []ClientMsg{m("2"), m("5")}; got.StoredTwice != 2 || !slices.Equal(merged.Rooms[0].StoredTwice, want) {
			t.Fatalf("merged: %d stored twice, %v; want %v, each once", got.StoredTwice, merged.Rooms[0].StoredTwice, want)
		}
		if got.Lost != 2 {
			t.Fatalf("merged: %d lost, want worker b's 2", got.Lost)
		}
	}
}
