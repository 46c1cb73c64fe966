package scenario

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/bench/verify"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/history"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// archiveSettle bounds the wait for the archiver to finish CHAT_MSG before
// the history store is read.
const archiveSettle = 3 * time.Minute

// ArchiveCheck is the history store read back at the end of a run, room by
// room, through the history service (the archiver's parley-history, which
// reads the store only) and compared with CHAT_MSG: every room's archive
// must hold seqs 1..head with no gap, head equal to the room's last seq in
// CHAT_MSG and at or above the highest seq acked to the bench, each client
// message once, and at least as many of the bench's messages as were
// acked. Dense up to CHAT_MSG's head with that head at or above every
// acked seq means every acked message is archived.
type ArchiveCheck struct {
	Rooms    int    `json:"rooms"`
	Complete int    `json:"complete"` // rooms that passed every check
	Archived uint64 `json:"archived"` // messages read back
	Missing  uint64 `json:"missing"`  // seqs absent below a room's archive head
	Twice    uint64 `json:"twice"`    // client messages archived under more than one seq
	// HeadBehind counts rooms whose archive head is below CHAT_MSG's head;
	// BelowAcked those whose archive head is below the highest acked seq;
	// Short those holding fewer of the bench's messages than were acked.
	HeadBehind int      `json:"head_behind"`
	BelowAcked int      `json:"below_acked"`
	Short      int      `json:"short"`
	Problems   []string `json:"problems,omitempty"` // examples, and failures to read
}

// OK reports whether every room passed.
func (a *ArchiveCheck) OK() bool { return a.Rooms > 0 && a.Complete == a.Rooms }

// maxArchiveProblems bounds the examples kept.
const maxArchiveProblems = 20

func (a *ArchiveCheck) problem(format string, args ...any) {
	if len(a.Problems) < maxArchiveProblems {
		a.Problems = append(a.Problems, fmt.Sprintf(format, args...))
	}
}

// checkArchive waits for the server's backlog to clear, then checks every
// room of sum.
func checkArchive(ctx context.Context, natsURL string, sum verify.Summary, logf func(string, ...any)) *ArchiveCheck {
	a := &ArchiveCheck{Rooms: len(sum.Rooms)}
	if natsURL == "" {
		a.problem("no --nats-url: the archive cannot be read")
		return a
	}
	if n, err := backlog(ctx, natsURL, archiveSettle); err != nil || n > 0 {
		a.problem("the archiver's backlog did not clear within %v (%d left, %v)", archiveSettle, n, err)
	}
	nc, err := nats.Connect(natsURL, nats.Name("parley-bench-archive"))
	if err != nil {
		a.problem("connect: %v", err)
		return a
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		a.problem("%v", err)
		return a
	}
	s, err := js.Stream(ctx, bus.StreamMsg)
	if err != nil {
		a.problem("stream %s: %v", bus.StreamMsg, err)
		return a
	}
	logf("checking the archive of %d rooms", len(sum.Rooms))
	for _, r := range sum.Rooms {
		head, err := streamHead(ctx, s, r.Room)
		if err == nil {
			var msgs []*pb.Message
			if msgs, err = readArchive(ctx, nc, r.Room); err == nil {
				if a.room(r, head, msgs) {
					a.Complete++
				}
				continue
			}
		}
		a.problem("room %s: %v", r.Room, err)
	}
	return a
}

// room checks one room's archive, msgs ascending, against its CHAT_MSG
// head and what the bench saw acked, and reports whether it passed.
func (a *ArchiveCheck) room(r verify.RoomSummary, head uint64, msgs []*pb.Message) bool {
	ok := true
	a.Archived += uint64(len(msgs))
	var top uint64
	seen := map[verify.ClientMsg]uint64{}
	var bench uint64
	for _, m := range msgs {
		if m.GetSeq() != top+1 {
			if m.Seq > top {
				a.Missing += m.Seq - top - 1
			}
			a.problem("room %s: archive holds seq %d after %d", r.Room, m.Seq, top)
			ok = false
		}
		top = max(top, m.Seq)
		if m.ClientMsgId == "" {
			continue // membership changes
		}
		k := verify.ClientMsg{Sender: m.Sender, ID: m.ClientMsgId}
		if first, dup := seen[k]; dup {
			a.Twice++
			a.problem("room %s: %s's %s archived as seqs %d and %d", r.Room, m.Sender, m.ClientMsgId, first, m.Seq)
			ok = false
			continue
		}
		seen[k] = m.Seq
		bench++
	}
	if top < head {
		a.HeadBehind++
		a.Missing += head - top
		a.problem("room %s: archive head %d, CHAT_MSG head %d", r.Room, top, head)
		ok = false
	}
	if top < r.MaxAcked {
		a.BelowAcked++
		a.problem("room %s: archive head %d below the highest acked seq %d", r.Room, top, r.MaxAcked)
		ok = false
	}
	if bench < r.Acked {
		a.Short++
		a.problem("room %s: %d client messages archived, %d acked", r.Room, bench, r.Acked)
		ok = false
	}
	return ok
}

// streamHead is the room's last seq in CHAT_MSG, read from the stream
// leader (not Direct Get, which may lag).
func streamHead(ctx context.Context, s jetstream.Stream, room string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := s.GetLastMsgForSubject(ctx, bus.MsgSubject(room))
	if err != nil {
		return 0, fmt.Errorf("CHAT_MSG head: %w", err)
	}
	return strconv.ParseUint(m.Header.Get(bus.HeaderSeq), 10, 64)
}

// readArchive pages through the room's whole archive, oldest first.
func readArchive(ctx context.Context, nc *nats.Conn, room string) ([]*pb.Message, error) {
	var out []*pb.Message
	var after uint64
	for {
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		res, err := history.Query(qctx, nc, &pb.HistoryQuery{Room: room, AfterSeq: &after, Limit: 1000})
		cancel()
		if err != nil {
			return nil, err
		}
		msgs := res.GetMessages()
		for _, m := range msgs {
			out = append(out, m.GetMessage())
		}
		if !res.GetHasMore() || len(msgs) == 0 {
			return out, nil
		}
		after = msgs[len(msgs)-1].GetMessage().GetSeq()
	}
}
