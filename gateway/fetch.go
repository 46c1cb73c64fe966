package gateway

import (
	"context"

	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// catchUpPage bounds one storage read during catch-up and history.
const catchUpPage = 500

// fetchRange reads from..to of a room's log as fan-out events.
func (g *Gateway) fetchRange(ctx context.Context, room string, from, to uint64) ([]*event, error) {
	entries, err := g.roomLog.Range(ctx, room, from, to)
	if err != nil {
		return nil, err
	}
	evs := make([]*event, len(entries))
	for i, e := range entries {
		evs[i] = &event{seq: e.Seq, raw: e.Raw}
	}
	return evs, nil
}

// historyPage serves a HistoryRequest from fetchRange, so the newest
// messages are included even before the archiver has written them.
func (g *Gateway) historyPage(ctx context.Context, room string, before, after *uint64, limit int) (*pb.HistoryPage, error) {
	head, err := g.roomLog.Head(ctx, room)
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
