package gateway

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/pkg/bus"
	"github.com/parley-chat/parley/pkg/history"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// catchUpPage bounds one storage read during catch-up and history.
const catchUpPage = 500

// roomHead returns a room's highest seq: the last message on its CHAT_MSG
// subject, or the archived head when the stream holds none.
func (g *Gateway) roomHead(ctx context.Context, room string) (uint64, error) {
	last, err := bus.LastForSubject(ctx, g.nc, bus.StreamMsg, g.subjects.Msg(room))
	if err == nil {
		return strconv.ParseUint(last.Header.Get(bus.HeaderSeq), 10, 64)
	}
	if !errors.Is(err, bus.ErrNotFound) {
		return 0, err
	}
	res, err := history.Query(ctx, g.nc, &pb.HistoryQuery{Room: room, Limit: 1})
	if err != nil {
		return 0, err
	}
	return res.HeadSeq, nil
}

// fetchRange reads a room's messages from..to (inclusive), contiguous from
// `from`: first from the history store (everything archived), then the rest
// from CHAT_MSG, continuing after the last archived message's stream
// sequence. It stops early only where neither holds the next message.
func (g *Gateway) fetchRange(ctx context.Context, room string, from, to uint64) ([]*event, error) {
	if from > to {
		return nil, nil
	}
	var out []*event
	after := from - 1
	res, err := history.Query(ctx, g.nc, &pb.HistoryQuery{Room: room, AfterSeq: &after, Limit: uint32(min(to-from+1, 1000))})
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
		out = append(out, &event{seq: m.Seq, raw: raw})
		next, streamFrom = m.Seq+1, am.StreamSeq+1
	}
	subject := g.subjects.Msg(room)
	for next <= to {
		batch, err := bus.NextBySubject(ctx, g.nc, bus.StreamMsg, subject, streamFrom, int(min(to-next+1, 256)))
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
			out = append(out, &event{seq: seq, raw: m.Data})
			next++
		}
		if len(batch) == 0 {
			break
		}
	}
	return out, nil
}

// historyPage serves a HistoryRequest from fetchRange, so the newest
// messages are included even before the archiver has written them.
func (g *Gateway) historyPage(ctx context.Context, room string, before, after *uint64, limit int) (*pb.HistoryPage, error) {
	head, err := g.roomHead(ctx, room)
	if err != nil {
		return nil, err
	}
	var from, to uint64
	page := &pb.HistoryPage{Room: room}
	switch {
	case after != nil:
		from, to = *after+1, min(head, *after+uint64(limit))
		page.HasMore = to < head
	default:
		to = head
		if before != nil {
			to = min(head, *before-min(*before, 1))
		}
		from = to - min(to, uint64(limit)) + 1
		page.HasMore = from > 1
	}
	if to == 0 || from > to {
		page.HasMore = false
		return page, nil
	}
	evs, err := g.fetchRange(ctx, room, from, to)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		m := new(pb.Message)
		if err := proto.Unmarshal(ev.raw, m); err != nil {
			return nil, err
		}
		page.Messages = append(page.Messages, m)
	}
	return page, nil
}
