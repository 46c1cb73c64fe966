package verify

import (
	"cmp"
	"slices"
	"sync"
)

// ClientMsg names a client message: the server stores each one of a room
// once, under one seq, however often it is sent.
type ClientMsg struct {
	Sender string `json:"sender"`
	ID     string `json:"client_msg_id"`
}

func compareClientMsg(a, b ClientMsg) int {
	return cmp.Or(cmp.Compare(a.Sender, b.Sender), cmp.Compare(a.ID, b.ID))
}

// sortedSet sorts list and drops repeats, in place.
func sortedSet(list []ClientMsg) []ClientMsg {
	slices.SortFunc(list, compareClientMsg)
	return slices.Compact(list)
}

// copies finds the client messages of one room stored twice, from all of
// a worker's receivers in the room: a message delivered under two seqs.
// Shared by the room's streams, it keeps one entry per client message,
// whatever the number of receivers.
type copies struct {
	mu    sync.Mutex // taken after Stream.mu, never before it
	seen  map[ClientMsg]firstCopy
	twice []ClientMsg // each message stored twice, once, in the order found
}

// firstCopy is the seq a client message was first delivered at, and
// whether it has been delivered under another seq since.
type firstCopy struct {
	seq   uint64
	twice bool
}

func newCopies() *copies { return &copies{seen: make(map[ClientMsg]firstCopy)} }

// see records a delivery of m under seq. The first time m arrives under a
// seq other than its first one, it returns that first seq and true.
func (c *copies) see(m ClientMsg, seq uint64) (first uint64, storedTwice bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.seen[m]
	switch {
	case !ok:
		c.seen[m] = firstCopy{seq: seq}
	case f.seq != seq && !f.twice:
		c.seen[m] = firstCopy{seq: f.seq, twice: true}
		c.twice = append(c.twice, m)
		return f.seq, true
	}
	return 0, false
}

// storedTwice returns the messages stored twice so far, sorted.
func (c *copies) storedTwice() []ClientMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sortedSet(slices.Clone(c.twice))
}
