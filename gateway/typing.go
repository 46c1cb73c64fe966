package gateway

import (
	"context"

	"github.com/parley-chat/parley/pkg/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// typing relays a typing signal to the room's other members over core
// NATS: never stored, gone if nobody listens. Clients show it for a few
// seconds and resend every 3 s while the user types.
func (s *session) typing(ctx context.Context, id uint64, user string, t *pb.Typing) {
	room := t.GetRoom()
	if e := protocol.ValidRoom(room); e != nil {
		s.fail(id, e)
		return
	}
	if !s.g.users.allowTyping(user) {
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_RATE_LIMITED, "typing: resend every 3 s at most"))
		return
	}
	// A subscription was checked when it was made; skip the store then.
	if !s.subscribed(room) {
		if e := s.checkMember(ctx, room, user); e != nil {
			s.fail(id, e)
			return
		}
	}
	s.g.publish(bus.RoomSignals(room), &pb.ServerFrame{Kind: &pb.ServerFrame_Typing{Typing: &pb.TypingEvent{
		Room: room, User: user, Active: t.GetActive(),
	}}}, nil)
	s.ok(id)
}

// subscribed reports whether the session has a live subscription to room.
func (s *session) subscribed(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hubIndex(room) >= 0
}

// ok answers a request that has no other result.
func (s *session) ok(id uint64) {
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_Ok{Ok: &pb.Ok{}}})
}
