package gateway

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/pkg/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// Store is what a gateway keeps in the store: rooms and members, and read
// cursors.
type Store interface {
	store.RoomStore
	store.ReadStore
	// Relations lists a user's friends, whose presence the user follows.
	Relations(ctx context.Context, user string, l store.RelationList, afterUser string, limit int) ([]store.Listed, error)
}

// markRead raises the user's read cursor, up to the room's head at most.
// The user's other devices learn the new unread count (UnreadEvent,
// publishUserEvent); in a small room the other members see the receipt
// (ReadEvent on the room's signals). A mark that moves nothing (a device
// behind another) tells nobody.
func (s *session) markRead(ctx context.Context, id uint64, user string, r *pb.MarkRead) {
	room := r.GetRoom()
	if e := s.checkMember(ctx, room, user); e != nil {
		s.fail(id, e)
		return
	}
	if r.GetSeq() == 0 {
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "seq: must be at least 1"))
		return
	}
	head, err := s.g.roomLog.Head(ctx, room)
	if err != nil {
		s.logger().Warn("room head unavailable", zap.String("room", room), zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "room unavailable, retry"))
		return
	}
	seq := min(r.GetSeq(), head)
	cursor, err := s.g.rooms.MarkRead(ctx, user, room, seq)
	if err != nil {
		s.logger().Warn("mark read failed", zap.String("room", room), zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "mark read failed, retry"))
		return
	}
	s.ok(id)
	if seq == 0 || cursor != seq {
		return
	}
	s.g.publishUserEvent(ctx, user, s, &pb.ServerFrame{Kind: &pb.ServerFrame_Unread{Unread: &pb.UnreadEvent{
		Room: room, HeadSeq: head, ReadSeq: cursor, Unread: head - cursor,
	}}})
	small, err := s.g.smallRoom(ctx, room)
	if err != nil {
		s.logger().Warn("room size unavailable, no read receipt", zap.String("room", room), zap.Error(err))
		return
	}
	if small {
		s.g.publish(bus.RoomSignals(room), &pb.ServerFrame{Kind: &pb.ServerFrame_Read{Read: &pb.ReadEvent{
			Room: room, User: user, Seq: cursor,
		}}}, nil)
	}
}

// listReads pages a room's read cursors, "who has read up to where":
// ?after=<user>&limit=<1..1000>.
func (g *Gateway) listReads(w http.ResponseWriter, r *http.Request, user string) {
	id := r.PathValue("room")
	if _, ok := g.member(r.Context(), w, r, id, user); !ok {
		return
	}
	limit, ok := g.queryLimit(w, r, defaultRoomPage, maxRoomPage)
	if !ok {
		return
	}
	reads, err := g.rooms.RoomReads(r.Context(), id, r.URL.Query().Get("after"), limit)
	if err != nil {
		g.apiFail(w, r, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	if reads == nil {
		reads = []store.ReadCursor{} // [] rather than null
	}
	resp := map[string]any{"reads": reads}
	if len(reads) == limit {
		resp["next"] = reads[len(reads)-1].User
	}
	writeJSON(w, http.StatusOK, resp)
}

// Page sizes of the room listings (members, reads).
const (
	defaultRoomPage = 100
	maxRoomPage     = 1000
)
