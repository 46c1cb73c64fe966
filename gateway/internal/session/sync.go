package session

import (
	"context"
	"errors"

	"golang.org/x/sync/errgroup"

	"github.com/parley-chat/parley/internal/roomlog"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// Sync page sizes.
const (
	defaultSyncLimit = 100
	maxSyncLimit     = 500
)

// syncRooms reads a page of user's rooms after afterRoom with their state
// (limit 0: the default page).
func syncRooms(ctx context.Context, st Store, log RoomLog, user, afterRoom string, limit int) (*pb.RoomList, error) {
	if limit == 0 {
		limit = defaultSyncLimit
	}
	limit = min(limit, maxSyncLimit)
	rooms, err := st.UserRooms(ctx, user, afterRoom, limit)
	if err != nil {
		return nil, err
	}
	summaries := make([]*pb.RoomSummary, len(rooms))
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(16)
	for i, room := range rooms {
		eg.Go(func() (err error) {
			summaries[i], err = roomSummary(ectx, st, log, user, room)
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
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
	return list, nil
}

// roomSummary is one room as user sees it; nil if user is no longer a
// member (the rooms index may lag a removal).
func roomSummary(ctx context.Context, st Store, log RoomLog, user, room string) (*pb.RoomSummary, error) {
	m, err := st.Member(ctx, room, user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := st.Room(ctx, room)
	if err != nil {
		return nil, err
	}
	head, err := log.Head(ctx, room)
	if err != nil {
		return nil, err
	}
	read, err := st.ReadSeq(ctx, user, room)
	if err != nil {
		return nil, err
	}
	read = min(read, head)
	sum := &pb.RoomSummary{
		Room: room, Kind: string(r.Kind), Name: r.Name, Role: string(m.Role),
		HeadSeq: head, ReadSeq: read, Unread: head - read,
	}
	if head > 0 {
		sum.LastMessage, err = log.Message(ctx, room, head)
		if err != nil && !errors.Is(err, roomlog.ErrNotFound) {
			return nil, err
		}
	}
	return sum, nil
}
