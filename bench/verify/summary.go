package verify

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// SummaryVersion is the version of the Summary format; Merge refuses others.
const SummaryVersion = 2

// Summary is one worker's findings, or several workers' merged, in a form
// that travels as JSON. See the package documentation for how Lost is
// derived from it.
type Summary struct {
	Version  int           `json:"version"`
	Rooms    []RoomSummary `json:"rooms"` // sorted by Room
	Examples []Anomaly     `json:"examples,omitempty"`
}

// RoomSummary is what is known about one room.
type RoomSummary struct {
	Room       string `json:"room"`
	Sent       uint64 `json:"sent"`
	Acked      uint64 `json:"acked"`
	MaxAcked   uint64 `json:"max_acked"`
	Receivers  uint64 `json:"receivers"`
	Delivered  uint64 `json:"delivered"` // distinct seqs, summed over receivers
	Duplicated uint64 `json:"duplicated"`
	Reordered  uint64 `json:"reordered"`
	Gaps       uint64 `json:"gaps"`
	// Silent counts receivers opened with from = 0 that got nothing: with no
	// known start they cannot be checked, and a silent member is suspect.
	Silent uint64 `json:"silent"`
	// Missing groups the other receivers by what they lack: each one's
	// holes, and the open range after its top (highest seq delivered, or
	// start-1). Sorted by From, then To.
	Missing []Missing `json:"missing,omitempty"`
	// StoredTwice are the client messages some receiver got under two
	// seqs, sorted; merged as a union (see RoomSummary.merge).
	StoredTwice []ClientMsg `json:"stored_twice,omitempty"`
}

// Missing is a range of seqs that a number of receivers have not received.
type Missing struct {
	From      uint64 `json:"from"`
	To        uint64 `json:"to,omitempty"` // inclusive; 0 for no upper end
	Receivers uint64 `json:"receivers"`
}

// lostBelow counts the range's seqs up to m, times its receivers.
func (g Missing) lostBelow(m uint64) uint64 {
	to := m
	if g.To != 0 {
		to = min(g.To, m)
	}
	if g.From > to {
		return 0
	}
	return (to - g.From + 1) * g.Receivers
}

// Lost is the number of (receiver, seq) pairs up to the room's highest
// acked seq that were never delivered.
func (r RoomSummary) Lost() uint64 {
	var n uint64
	for _, g := range r.Missing {
		n += g.lostBelow(r.MaxAcked)
	}
	return n
}

// missingKey identifies a Missing group.
type missingKey struct{ from, to uint64 }

// Summary returns this worker's findings so far.
func (v *Verifier) Summary() Summary {
	v.mu.Lock()
	defer v.mu.Unlock()
	sum := Summary{Version: SummaryVersion}
	for _, name := range slices.Sorted(maps.Keys(v.rooms)) {
		r := v.rooms[name]
		rs := RoomSummary{
			Room:        name,
			Sent:        r.sends.sent.Load(),
			Acked:       r.sends.acked.Load(),
			MaxAcked:    r.sends.maxAcked.Load(),
			Receivers:   uint64(len(r.streams)),
			StoredTwice: r.copies.storedTwice(),
		}
		missing := make(map[missingKey]uint64)
		for _, s := range r.streams {
			s.summarize(&rs, missing)
		}
		rs.Missing = missingList(missing)
		sum.Rooms = append(sum.Rooms, rs)
	}
	v.examples.mu.Lock()
	sum.Examples = slices.Clone(v.examples.list)
	v.examples.mu.Unlock()
	return sum
}

// summarize adds the stream's counts to rs and its missing ranges to missing.
func (s *Stream) summarize(rs *RoomSummary, missing map[missingKey]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs.Delivered += s.delivered
	rs.Duplicated += s.anomalies[Duplicated]
	rs.Reordered += s.anomalies[Reordered]
	rs.Gaps += s.anomalies[Gap]
	if s.base == 0 {
		rs.Silent++
		return
	}
	for _, h := range s.holes {
		missing[missingKey{h.lo, h.hi}]++
	}
	missing[missingKey{s.top + 1, 0}]++
}

func missingList(m map[missingKey]uint64) []Missing {
	out := make([]Missing, 0, len(m))
	for k, n := range m {
		out = append(out, Missing{From: k.from, To: k.to, Receivers: n})
	}
	slices.SortFunc(out, func(a, b Missing) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	return out
}

// Merge adds another worker's summary to s. The zero Summary is a valid
// starting point.
func (s *Summary) Merge(o Summary) error {
	if o.Version != SummaryVersion || (s.Version != 0 && s.Version != SummaryVersion) {
		return fmt.Errorf("verify: summary versions %d and %d, want %d", s.Version, o.Version, SummaryVersion)
	}
	s.Version = SummaryVersion
	at := make(map[string]int, len(s.Rooms)+len(o.Rooms)) // indexes stay valid as Rooms grows
	for i, r := range s.Rooms {
		at[r.Room] = i
	}
	for _, r := range o.Rooms {
		if i, ok := at[r.Room]; ok {
			s.Rooms[i].merge(r)
			continue
		}
		at[r.Room] = len(s.Rooms)
		s.Rooms = append(s.Rooms, r)
	}
	slices.SortFunc(s.Rooms, func(a, b RoomSummary) int { return cmp.Compare(a.Room, b.Room) })
	room := max(MaxExamples-len(s.Examples), 0)
	s.Examples = append(s.Examples, o.Examples[:min(len(o.Examples), room)]...)
	return nil
}

func (r *RoomSummary) merge(o RoomSummary) {
	r.Sent += o.Sent
	r.Acked += o.Acked
	r.MaxAcked = max(r.MaxAcked, o.MaxAcked)
	r.Receivers += o.Receivers
	r.Delivered += o.Delivered
	r.Duplicated += o.Duplicated
	r.Reordered += o.Reordered
	r.Gaps += o.Gaps
	r.Silent += o.Silent
	// Every member of a room receives every one of its messages, so both
	// copies of a message stored twice reach every member, and each worker
	// with a member in the room finds the message on its own: workers
	// exchange only the messages they found, never every message's seq. A
	// union counts each message once, however many workers found it (a sum
	// would count it once per worker), and still counts one that only some
	// workers found, where the others' receivers lost a copy (a maximum of
	// counts would miss it). Copies split between workers, neither getting
	// both, mean lost deliveries: Lost reports those.
	r.StoredTwice = sortedSet(slices.Concat(r.StoredTwice, o.StoredTwice))
	missing := make(map[missingKey]uint64, len(r.Missing)+len(o.Missing))
	for _, g := range slices.Concat(r.Missing, o.Missing) {
		missing[missingKey{g.From, g.To}] += g.Receivers
	}
	r.Missing = missingList(missing)
}

// Totals are a Summary's counts over all rooms.
type Totals struct {
	Rooms      uint64 `json:"rooms"`
	Receivers  uint64 `json:"receivers"`
	Sent       uint64 `json:"sent"`
	Acked      uint64 `json:"acked"`
	Delivered  uint64 `json:"delivered"`
	Lost       uint64 `json:"lost"`
	Duplicated uint64 `json:"duplicated"`
	Reordered  uint64 `json:"reordered"`
	Gaps       uint64 `json:"gaps"`
	Silent     uint64 `json:"silent"`
	// StoredTwice counts client messages (room, sender, client_msg_id)
	// delivered under more than one seq.
	StoredTwice uint64 `json:"stored_twice"`
}

// Totals adds up the rooms, computing Lost per room.
func (s Summary) Totals() Totals {
	t := Totals{Rooms: uint64(len(s.Rooms))}
	for i := range s.Rooms {
		r := &s.Rooms[i]
		t.Receivers += r.Receivers
		t.Sent += r.Sent
		t.Acked += r.Acked
		t.Delivered += r.Delivered
		t.Lost += r.Lost()
		t.Duplicated += r.Duplicated
		t.Reordered += r.Reordered
		t.Gaps += r.Gaps
		t.Silent += r.Silent
		t.StoredTwice += uint64(len(r.StoredTwice))
	}
	return t
}

// Clean reports whether every receiver got every message exactly once, in
// order, and the server stored every client message once.
func (t Totals) Clean() bool {
	return t.Lost == 0 && t.Duplicated == 0 && t.Reordered == 0 && t.Gaps == 0 && t.Silent == 0 && t.StoredTwice == 0
}
