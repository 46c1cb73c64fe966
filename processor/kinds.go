package processor

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/parley-chat/parley/pkg/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/roomlog"
	"github.com/parley-chat/parley/pkg/store"
)

// Room changes come from the HTTP API, never from clients directly; the
// processor applies them to the store before sequencing their event, so a
// member removed at seq n can send nothing after n.
func isRoomChange(k pb.MessageKind) bool {
	switch k {
	case pb.MessageKind_MESSAGE_KIND_MEMBER_JOINED, pb.MessageKind_MESSAGE_KIND_MEMBER_LEFT,
		pb.MessageKind_MESSAGE_KIND_MEMBER_REMOVED, pb.MessageKind_MESSAGE_KIND_MEMBER_ROLE_CHANGED,
		pb.MessageKind_MESSAGE_KIND_ROOM_RENAMED:
		return true
	}
	return false
}

// Limits of room changes.
const (
	MaxTargetsPerEvent = 1000
	MaxRoomName        = 200
)

func forbidden(format string, args ...any) *pb.Error {
	return protocol.Errorf(pb.ErrorCode_ERROR_CODE_FORBIDDEN, format, args...)
}

func invalid(format string, args ...any) *pb.Error {
	return protocol.Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, format, args...)
}

func canManage(r store.Role) bool { return r == store.RoleOwner || r == store.RoleAdmin }

// checkReference validates an edit, delete, reaction or reply against the
// message it refers to. A returned error is transient.
func (w *partitionWriter) checkReference(ctx context.Context, in *pb.InboundMessage, actor store.Role, st *roomState) (*pb.Error, error) {
	if in.ReplyToSeq > st.seq {
		return invalid("reply_to_seq %d: the room has %d messages", in.ReplyToSeq, st.seq), nil
	}
	if in.Kind == pb.MessageKind_MESSAGE_KIND_TEXT {
		return nil, nil
	}
	if in.RefSeq > st.seq {
		return invalid("ref_seq %d: the room has %d messages", in.RefSeq, st.seq), nil
	}
	ref, err := w.p.roomLog.Message(ctx, in.Room, in.RefSeq)
	if errors.Is(err, roomlog.ErrNotFound) {
		return invalid("ref_seq %d: no such message", in.RefSeq), nil
	} else if err != nil {
		return nil, errTransient{err}
	}
	if ref.Kind != pb.MessageKind_MESSAGE_KIND_TEXT {
		return invalid("ref_seq %d is not a regular message", in.RefSeq), nil
	}
	switch in.Kind {
	case pb.MessageKind_MESSAGE_KIND_EDIT:
		if ref.Sender != in.Sender {
			return forbidden("only the sender of message %d may edit it", in.RefSeq), nil
		}
	case pb.MessageKind_MESSAGE_KIND_DELETE:
		if ref.Sender != in.Sender && !canManage(actor) {
			return forbidden("only the sender of message %d or an owner or admin may delete it", in.RefSeq), nil
		}
	}
	return nil, nil
}

// applyRoomChange checks the actor's rights for a room change and applies
// it to the store. member is the actor's membership (found is false if the
// actor is not a member). Applying is idempotent, so a retry after a failed
// publish is harmless.
func (w *partitionWriter) applyRoomChange(ctx context.Context, in *pb.InboundMessage, actor store.Member, found bool, st *roomState) (*pb.Error, error) {
	if st.kind == store.RoomDirect {
		return forbidden("direct rooms have fixed members and no name"), nil
	}
	selfJoin := in.Kind == pb.MessageKind_MESSAGE_KIND_MEMBER_JOINED && len(in.TargetUsers) == 1 && in.TargetUsers[0] == in.Sender
	switch {
	case selfJoin && st.kind == store.RoomChannel:
		// Channels are open: anyone may join to read.
	case !found:
		return protocol.Errorf(pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND, "room %s does not exist or you are not a member", in.Room), nil
	}
	if in.Kind == pb.MessageKind_MESSAGE_KIND_ROOM_RENAMED {
		name := in.GetBody().GetText()
		if !canManage(actor.Role) {
			return forbidden("only owners and admins rename a room"), nil
		}
		if name == "" || len(name) > MaxRoomName || !utf8.ValidString(name) {
			return invalid("name: 1-%d bytes of UTF-8", MaxRoomName), nil
		}
		return nil, transient(w.p.st.RenameRoom(ctx, in.Room, name))
	}
	if n := len(in.TargetUsers); n == 0 || n > MaxTargetsPerEvent {
		return invalid("target_users: 1-%d users", MaxTargetsPerEvent), nil
	}
	targets, err := w.memberships(ctx, in.Room, in.TargetUsers)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	switch in.Kind {
	case pb.MessageKind_MESSAGE_KIND_MEMBER_JOINED:
		if !selfJoin && !canManage(actor.Role) {
			return forbidden("only owners and admins add members"), nil
		}
		var add []store.Member
		for _, u := range in.TargetUsers {
			if !bus.ValidUserID(u) {
				return invalid("target_users: invalid user id %q", u), nil
			}
			if _, ok := targets[u]; !ok {
				add = append(add, store.Member{User: u, Role: store.RoleMember, JoinedAt: now})
			}
		}
		if len(add) == 0 {
			return invalid("already members"), nil
		}
		return nil, transient(w.p.st.AddMembers(ctx, in.Room, add))
	case pb.MessageKind_MESSAGE_KIND_MEMBER_LEFT:
		if len(in.TargetUsers) != 1 || in.TargetUsers[0] != in.Sender {
			return invalid("members leave only themselves"), nil
		}
	case pb.MessageKind_MESSAGE_KIND_MEMBER_REMOVED:
		for _, u := range in.TargetUsers {
			t, ok := targets[u]
			switch {
			case !ok:
				return invalid("%s is not a member", u), nil
			case u == in.Sender:
				return invalid("to leave, use leave"), nil
			case !canManage(actor.Role), t.Role == store.RoleOwner, t.Role == store.RoleAdmin && actor.Role != store.RoleOwner:
				return forbidden("a %s may not remove a %s", actor.Role, t.Role), nil
			}
		}
	case pb.MessageKind_MESSAGE_KIND_MEMBER_ROLE_CHANGED:
		role := store.Role(in.Role)
		if actor.Role != store.RoleOwner {
			return forbidden("only owners change roles"), nil
		}
		if role != store.RoleOwner && role != store.RoleAdmin && role != store.RoleMember {
			return invalid("role: owner, admin or member"), nil
		}
		var changed []store.Member
		for _, u := range in.TargetUsers {
			t, ok := targets[u]
			if !ok {
				return invalid("%s is not a member", u), nil
			}
			t.Role = role
			changed = append(changed, t)
		}
		return nil, transient(w.p.st.AddMembers(ctx, in.Room, changed))
	}
	// Leave and remove: drop every target.
	for _, u := range in.TargetUsers {
		if err := w.p.st.RemoveMember(ctx, in.Room, u); err != nil {
			return nil, errTransient{err}
		}
	}
	return nil, nil
}

// memberships reads the current membership of each user that has one.
func (w *partitionWriter) memberships(ctx context.Context, room string, users []string) (map[string]store.Member, error) {
	out := make(map[string]store.Member, len(users))
	for _, u := range users {
		m, err := w.p.st.Member(ctx, room, u)
		switch {
		case err == nil:
			out[u] = m
		case !errors.Is(err, store.ErrNotFound):
			return nil, errTransient{fmt.Errorf("member %s of %s: %w", u, room, err)}
		}
	}
	return out, nil
}

// transient marks a store error as worth retrying.
func transient(err error) error {
	if err == nil {
		return nil
	}
	return errTransient{err}
}
