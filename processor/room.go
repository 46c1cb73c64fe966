package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// roomState is what a partition knows about a room it writes. It is
// loaded from the store and CHAT_MSG on a room's first message and after
// fencing, and kept exact by the changes this processor applies itself.
type roomState struct {
	kind      store.RoomKind
	pair      []string // a direct room's two members (fixed for its life)
	seq       uint64   // last assigned room seq
	streamSeq uint64   // CHAT_MSG sequence of that message (0: none in stream)
	recent    *recentIDs
	// members caches memberships read or written, found or not; only this
	// processor changes them while it holds the partition.
	members map[string]memberEntry
	// blocked is the last block state read for a direct room; it serves
	// while the store cannot answer.
	blocked     bool
	blockedRead bool
}

type memberEntry struct {
	m     store.Member
	found bool
}

// maxCachedMembers bounds a room's membership cache; a full cache is
// emptied and fills again from the store.
const maxCachedMembers = 10_000

// state returns r's state, loading it when there is none.
func (pt *partition) state(ctx context.Context, r *room) (*roomState, error) {
	if r.state != nil {
		return r.state, nil
	}
	st, err := pt.load(ctx, r.id)
	if err != nil {
		return nil, err
	}
	r.state = st
	return st, nil
}

// load reads a room: its kind from the store, its head from the CHAT_MSG
// leader (Direct Get may lag), or the archived head when the stream no
// longer holds any of its messages, and the client message ids of its
// messages within the dedup horizon.
func (pt *partition) load(ctx context.Context, id string) (*roomState, error) {
	meta, err := pt.p.st.Room(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(id)
	} else if err != nil {
		return nil, transient(err)
	}
	st := &roomState{kind: meta.Kind, members: make(map[string]memberEntry),
		recent: newRecentIDs(pt.p.cfg.DedupHorizon, pt.p.cfg.DedupPerRoom)}
	if meta.Kind == store.RoomDirect {
		members, err := pt.p.st.Members(ctx, id, "", 2)
		if err != nil {
			return nil, transient(err)
		}
		for _, m := range members {
			st.pair = append(st.pair, m.User)
			st.members[m.User] = memberEntry{m: m, found: true}
		}
	}
	last, err := bus.LastForSubject(ctx, pt.p.nc, bus.StreamMsg, bus.MsgSubject(id))
	switch {
	case err == nil:
		st.streamSeq = last.Sequence
		st.seq, err = strconv.ParseUint(last.Header.Get(bus.HeaderSeq), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("room %s: bad %s header at stream seq %d: %w", id, bus.HeaderSeq, last.Sequence, err)
		}
		head := new(pb.Message)
		if err := proto.Unmarshal(last.Data, head); err != nil {
			return nil, fmt.Errorf("room %s: stream seq %d: %w", id, last.Sequence, err)
		}
		if err := pt.loadRecent(ctx, id, st, head.SentAt); err != nil {
			return nil, err
		}
	case errors.Is(err, bus.ErrNotFound):
		if st.seq, err = pt.p.st.HistoryHead(ctx, id); err != nil {
			return nil, transient(err)
		}
	default:
		return nil, transient(err)
	}
	return st, nil
}

// loadRecent reads the client message ids of the room's messages stored
// within the dedup horizon, up to its head at st.streamSeq (sent at
// headAt, unix ms), into st.recent. Direct Get may be answered by a
// replica that lags the leader, so it reads until it has seen the head.
func (pt *partition) loadRecent(ctx context.Context, id string, st *roomState, headAt int64) error {
	since := time.Now().Add(-pt.p.cfg.DedupHorizon)
	if headAt < since.UnixMilli() {
		return nil // the newest message is older than the horizon
	}
	// A minute's margin for clock skew between processors and the server.
	since = since.Add(-time.Minute)
	const batch = 256
	subject := bus.MsgSubject(id)
	var seen uint64 // the last stream sequence read
	for lagging := 0; seen < st.streamSeq; {
		var msgs []bus.StoredMsg
		var err error
		if seen == 0 {
			msgs, err = bus.NextBySubjectSince(ctx, pt.p.nc, bus.StreamMsg, subject, since, batch)
		} else {
			msgs, err = bus.NextBySubject(ctx, pt.p.nc, bus.StreamMsg, subject, seen+1, batch)
		}
		if err != nil {
			return transient(err)
		}
		if len(msgs) == 0 {
			if lagging++; lagging > 40 {
				return transient(fmt.Errorf("room %s: CHAT_MSG replica does not reach stream seq %d", id, st.streamSeq))
			}
			time.Sleep(25 * time.Millisecond)
		}
		for _, sm := range msgs {
			m := new(pb.Message)
			if err := proto.Unmarshal(sm.Data, m); err != nil {
				return fmt.Errorf("room %s: stream seq %d: %w", id, sm.Sequence, err)
			}
			st.recent.add(m.Sender, m.ClientMsgId, m.Seq, m.SentAt)
			seen = sm.Sequence
		}
	}
	return nil
}

// member returns user's membership of the room, from the cache or the
// store.
func (pt *partition) member(ctx context.Context, st *roomState, room, user string) (store.Member, bool, error) {
	if e, ok := st.members[user]; ok {
		return e.m, e.found, nil
	}
	m, err := pt.p.st.Member(ctx, room, user)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Member{}, false, transient(err)
	}
	st.setMember(user, m, found)
	return m, found, nil
}

func (st *roomState) setMember(user string, m store.Member, found bool) {
	if len(st.members) >= maxCachedMembers {
		clear(st.members)
	}
	st.members[user] = memberEntry{m: m, found: found}
}

// isBlocked reads whether a direct room's members blocked each other.
// Blocks are set outside the processor, so it reads the store every time;
// while the store cannot answer it goes by the last state it read.
func (pt *partition) isBlocked(ctx context.Context, st *roomState) (bool, error) {
	b, err := pt.p.st.Blocked(ctx, st.pair[0], st.pair[1])
	if err != nil {
		if st.blockedRead {
			return st.blocked, nil
		}
		return false, transient(err)
	}
	st.blocked, st.blockedRead = b, true
	return b, nil
}

// recentIDs remembers a room's client message ids, (sender, id) → seq, for
// a horizon of time and up to a count, oldest dropped first.
type recentIDs struct {
	horizon time.Duration
	max     int
	seqs    map[string]uint64
	order   []recentID // in seq order from order[head]
	head    int
}

type recentID struct {
	key string
	at  int64 // unix milliseconds
}

func newRecentIDs(horizon time.Duration, max int) *recentIDs {
	return &recentIDs{horizon: horizon, max: max, seqs: make(map[string]uint64)}
}

func recentKey(sender, clientMsgID string) string { return sender + "\x00" + clientMsgID }

func (r *recentIDs) get(sender, clientMsgID string) (uint64, bool) {
	seq, ok := r.seqs[recentKey(sender, clientMsgID)]
	return seq, ok
}

// add records a stored message; at is its send time.
func (r *recentIDs) add(sender, clientMsgID string, seq uint64, at int64) {
	k := recentKey(sender, clientMsgID)
	if _, ok := r.seqs[k]; ok {
		return
	}
	r.seqs[k] = seq
	r.order = append(r.order, recentID{key: k, at: at})
	oldest := time.Now().Add(-r.horizon).UnixMilli()
	for r.head < len(r.order) && (len(r.order)-r.head > r.max || r.order[r.head].at < oldest) {
		delete(r.seqs, r.order[r.head].key)
		r.order[r.head] = recentID{}
		r.head++
	}
	if r.head > len(r.order)/2 {
		r.order = append(r.order[:0], r.order[r.head:]...)
		r.head = 0
	}
}
