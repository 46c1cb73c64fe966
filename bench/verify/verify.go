package verify

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Verifier collects one worker's sends and deliveries. It is safe for
// concurrent use; the zero value is not usable.
type Verifier struct {
	mu      sync.Mutex
	rooms   map[string]*roomState
	streams map[streamKey]*Stream

	live     liveCounters
	examples examples
}

type streamKey struct{ receiver, room string }

// roomState is everything a worker knows about one room.
type roomState struct {
	sends   Room
	copies  *copies
	streams []*Stream // guarded by Verifier.mu
}

// New returns an empty Verifier.
func New() *Verifier {
	return &Verifier{rooms: make(map[string]*roomState), streams: make(map[streamKey]*Stream)}
}

// room returns the state of room, creating it. Caller holds v.mu.
func (v *Verifier) room(name string) *roomState {
	r := v.rooms[name]
	if r == nil {
		r = &roomState{copies: newCopies()}
		v.rooms[name] = r
	}
	return r
}

// Room returns the sending side of room, for senders to report to. Keep the
// handle: it records without locks.
func (v *Verifier) Room(name string) *Room {
	v.mu.Lock()
	defer v.mu.Unlock()
	return &v.room(name).sends
}

// Open returns the Stream of receiver's deliveries in room. from is the
// first seq the receiver must get, or 0 to take the first delivered seq.
// Opening an open (receiver, room) again returns the same Stream, ignoring
// from, so a reconnecting client keeps its history.
func (v *Verifier) Open(receiver, room string, from uint64) *Stream {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := streamKey{receiver, room}
	if s := v.streams[k]; s != nil {
		return s
	}
	r := v.room(room)
	s := &Stream{v: v, receiver: receiver, room: room, copies: r.copies}
	if from > 0 {
		s.base, s.top = from, from-1
	}
	v.streams[k] = s
	r.streams = append(r.streams, s)
	return s
}

// Room is the sending side of a room. Its methods are safe for concurrent
// use and lock-free.
type Room struct {
	sent, acked, maxAcked atomic.Uint64
}

// Sent counts a new message sent to the room. Call it once per
// client_msg_id, not for retries.
func (r *Room) Sent() { r.sent.Add(1) }

// Acked records the ack of a message sent to the room. Call it once per
// client_msg_id, for the first ack that arrives.
func (r *Room) Acked(seq uint64) {
	r.acked.Add(1)
	for {
		m := r.maxAcked.Load()
		if seq <= m || r.maxAcked.CompareAndSwap(m, seq) {
			return
		}
	}
}

// Stream is one receiver's deliveries in one room. Its methods are safe for
// concurrent use, though a client normally delivers from one goroutine.
type Stream struct {
	v              *Verifier
	receiver, room string
	copies         *copies // the room's, shared with the worker's other receivers in it

	mu sync.Mutex
	// Invariant: every seq in [base, top] has been delivered except those in
	// holes; base == 0 until the stream is anchored (Open with from = 0 and
	// nothing delivered yet), and then top == 0 too.
	base, top uint64
	holes     []span // ascending, disjoint, within [base, top)
	delivered uint64 // distinct seqs delivered at or above base
	anomalies [numKinds]uint64
}

// span is the inclusive seq range [lo, hi].
type span struct{ lo, hi uint64 }

// Deliver records the delivery of the message with seq, sent by sender with
// client_msg_id msgID.
func (s *Stream) Deliver(seq uint64, sender, msgID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkCopies(seq, sender, msgID)
	s.checkSeq(seq, sender, msgID)
}

// checkCopies checks that the client message was delivered in this room
// under no other seq, by any of the worker's receivers. Messages without a
// client_msg_id (membership changes) have none to check. Caller holds s.mu.
func (s *Stream) checkCopies(seq uint64, sender, msgID string) {
	if msgID == "" {
		return
	}
	if first, twice := s.copies.see(ClientMsg{sender, msgID}, seq); twice {
		a := s.anomaly(StoredTwice, seq, sender, msgID)
		a.First = first
		s.v.examples.add(a)
	}
}

// checkSeq checks seq against the seqs delivered before. Caller holds s.mu.
func (s *Stream) checkSeq(seq uint64, sender, msgID string) {
	if s.base == 0 {
		// Seqs start at 1, so a 0 anchors at 1 and then counts as below it.
		s.base = max(seq, 1)
		s.top = s.base - 1
	}
	switch {
	case seq == s.top+1: // the common case: next in order
		s.top = seq
		s.delivered++
	case seq > s.top:
		s.holes = append(s.holes, span{s.top + 1, seq - 1})
		s.v.live.missing.Add(int64(seq - s.top - 1))
		s.note(Gap, seq, sender, msgID)
		s.top = seq
		s.delivered++
	case seq >= s.base && s.fill(seq):
		s.v.live.missing.Add(-1)
		s.note(Reordered, seq, sender, msgID)
		s.delivered++
	case seq >= s.base:
		s.note(Duplicated, seq, sender, msgID)
	default:
		s.note(Reordered, seq, sender, msgID) // below where the stream started
	}
}

// fill removes seq from the holes, reporting whether it was in one.
func (s *Stream) fill(seq uint64) bool {
	i, found := slices.BinarySearchFunc(s.holes, seq, func(h span, q uint64) int {
		switch {
		case h.hi < q:
			return -1
		case h.lo > q:
			return 1
		}
		return 0
	})
	if !found {
		return false
	}
	switch h := &s.holes[i]; {
	case h.lo == h.hi:
		s.holes = slices.Delete(s.holes, i, i+1)
	case seq == h.lo:
		h.lo++
	case seq == h.hi:
		h.hi--
	default: // split in two
		upper := span{seq + 1, h.hi}
		h.hi = seq - 1
		s.holes = slices.Insert(s.holes, i+1, upper)
	}
	return true
}

// note counts an anomaly of this stream. Caller holds s.mu.
func (s *Stream) note(k Kind, seq uint64, sender, msgID string) {
	s.anomalies[k]++
	s.v.live.anomalies[k].Add(1)
	s.v.examples.add(s.anomaly(k, seq, sender, msgID))
}

// anomaly describes a delivery to this stream. Caller holds s.mu.
func (s *Stream) anomaly(k Kind, seq uint64, sender, msgID string) Anomaly {
	return Anomaly{Kind: k, Receiver: s.receiver, Room: s.room, Seq: seq, Top: s.top, Sender: sender, MsgID: msgID}
}
