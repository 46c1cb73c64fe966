// Package roomlog reads a room's log: the history store (through the
// history service) for everything archived, and CHAT_MSG for the rest, so
// readers see every sequenced message whether or not it is archived yet.
package roomlog

import (
	"context"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/history"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Entry is one message of a room log in its stored encoding.
type Entry struct {
	Seq uint64
	Raw []byte // pb.Message, as stored in CHAT_MSG
}

// Reader reads room logs over a NATS connection.
type Reader struct {
	NC *nats.Conn
}

// Head returns a room's highest seq: the last message on its CHAT_MSG
// subject (a leader read), or the archived head when the stream holds none.
func (r Reader) Head(ctx context.Context, room string) (uint64, error) {
	last, err := bus.LastForSubject(ctx, r.NC, bus.StreamMsg, bus.MsgSubject(room))
	if err == nil {
		return strconv.ParseUint(last.Header.Get(bus.HeaderSeq), 10, 64)
	}
	if !errors.Is(err, bus.ErrNotFound) {
		return 0, err
	}
	res, err := history.Query(ctx, r.NC, &pb.HistoryQuery{Room: room, Limit: 1})
	if err != nil {
		return 0, err
	}
	return res.HeadSeq, nil
}

// Range reads a room's messages from..to (inclusive), contiguous from
// `from`: first from the history store, then the rest from CHAT_MSG,
// continuing after the last archived message's stream sequence. It stops
// early only where neither holds the next message.
func (r Reader) Range(ctx context.Context, room string, from, to uint64) ([]Entry, error) {
	if from > to || from == 0 {
		return nil, nil
	}
	var out []Entry
	after := from - 1
	res, err := history.Query(ctx, r.NC, &pb.HistoryQuery{Room: room, AfterSeq: &after, Limit: uint32(min(to-from+1, 1000))})
	if err != nil {
		return nil, err
	}
	next, streamFrom := from, uint64(1)
	for _, am := range res.Messages {
		m := am.GetMessage()
		if m.GetSeq() != next || m.GetSeq() > to {
			break
		}
		raw, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Seq: m.Seq, Raw: raw})
		next, streamFrom = m.Seq+1, am.StreamSeq+1
	}
	subject := bus.MsgSubject(room)
	for next <= to {
		batch, err := bus.NextBySubject(ctx, r.NC, bus.StreamMsg, subject, streamFrom, int(min(to-next+1, 256)))
		if err != nil {
			return nil, err
		}
		for _, m := range batch {
			streamFrom = m.Sequence + 1
			seq, err := strconv.ParseUint(m.Header.Get(bus.HeaderSeq), 10, 64)
			if err != nil || seq < next {
				continue
			}
			if seq != next || seq > to {
				return out, nil // a hole in both: report what is contiguous
			}
			out = append(out, Entry{Seq: seq, Raw: m.Data})
			next++
		}
		if len(batch) == 0 {
			break
		}
	}
	return out, nil
}

// ErrNotFound means the room log holds no message at that seq.
var ErrNotFound = errors.New("roomlog: no such message")

// Message reads one message of a room.
func (r Reader) Message(ctx context.Context, room string, seq uint64) (*pb.Message, error) {
	entries, err := r.Range(ctx, room, seq, seq)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, ErrNotFound
	}
	m := new(pb.Message)
	return m, proto.Unmarshal(entries[0].Raw, m)
}
