package session

import (
	"context"

	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// historyPage serves a HistoryRequest from the room log, so the newest
// messages are included even before the archiver has written them.
func historyPage(ctx context.Context, log RoomLog, room string, before, after *uint64, limit int) (*pb.HistoryPage, error) {
	head, err := log.Head(ctx, room)
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
	entries, err := log.Range(ctx, room, from, to)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		m := new(pb.Message)
		if err := proto.Unmarshal(e.Raw, m); err != nil {
			return nil, err
		}
		page.Messages = append(page.Messages, m)
	}
	return page, nil
}
