package gateway

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/roomlog"
	"github.com/parley-chat/parley/pkg/store"
)

// Sync page sizes.
const (
	defaultSyncLimit = 100
	maxSyncLimit     = 500
)

// sync answers a page of the user's rooms with their state, so a device
// that was away learns what changed; it then resumes each room it shows
// with Subscribe after_seq.
func (s *session) sync(ctx context.Context, id uint64, user string, q *pb.Sync) {
	if after := q.GetAfterRoom(); after != "" {
		if e := protocol.ValidRoom(after); e != nil {
			s.fail(id, e)
			return
		}
	}
	limit := int(q.GetLimit())
	if limit == 0 {
		limit = defaultSyncLimit
	}
	limit = min(limit, maxSyncLimit)
	rooms, err := s.g.rooms.UserRooms(ctx, user, q.GetAfterRoom(), limit)
	if err != nil {
		s.logger().Warn("sync failed", zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "rooms unavailable, retry"))
		return
	}
	summaries := make([]*pb.RoomSummary, len(rooms))
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(16)
	for i, room := range rooms {
		eg.Go(func() (err error) {
			summaries[i], err = s.g.roomSummary(ectx, user, room)
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		s.logger().Warn("sync failed", zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "rooms unavailable, retry"))
		return
	}
	list := &pb.RoomList{}
	for _, sum := range summaries {
		if sum != nil {
			list.Rooms = append(list.Rooms, sum)
		}
	}
	if len(rooms) == limit {
		list.Next = rooms[len(rooms)-1]
	}
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_Rooms{Rooms: list}})
}

// roomSummary is one room as user sees it; nil if user is no longer a
// member (the rooms index may lag a removal).
func (g *Gateway) roomSummary(ctx context.Context, user, room string) (*pb.RoomSummary, error) {
	m, err := g.rooms.Member(ctx, room, user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := g.rooms.Room(ctx, room)
	if err != nil {
		return nil, err
	}
	head, err := g.roomLog.Head(ctx, room)
	if err != nil {
		return nil, err
	}
	read, err := g.rooms.ReadSeq(ctx, user, room)
	if err != nil {
		return nil, err
	}
	read = min(read, head)
	sum := &pb.RoomSummary{
		Room: room, Kind: string(r.Kind), Name: r.Name, Role: string(m.Role),
		HeadSeq: head, ReadSeq: read, Unread: head - read,
	}
	if head > 0 {
		sum.LastMessage, err = g.roomLog.Message(ctx, room, head)
		if err != nil && !errors.Is(err, roomlog.ErrNotFound) {
			return nil, err
		}
	}
	return sum, nil
}
