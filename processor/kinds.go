package processor

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/parley-chat/parley/internal/roomlog"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
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

func forbidden(format string, args ...any) *protocol.Error {
	return protocol.Reject(pb.ErrorCode_ERROR_CODE_FORBIDDEN, format, args...)
}

func invalid(format string, args ...any) *protocol.Error {
	return protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, format, args...)
}

func canManage(r store.Role) bool { return r == store.RoleOwner || r == store.RoleAdmin }

// checkReference validates an edit, delete, reaction or reply against the
// message it refers to.
func (pt *partition) checkReference(ctx context.Context, in *pb.InboundMessage, actor store.Role, st *roomState) error {
	if in.ReplyToSeq > st.seq {
		return invalid("reply_to_seq %d: the room has %d messages", in.ReplyToSeq, st.seq)
	}
	if in.Kind == pb.MessageKind_MESSAGE_KIND_TEXT {
		return nil
	}
	if in.RefSeq > st.seq {
		return invalid("ref_seq %d: the room has %d messages", in.RefSeq, st.seq)
	}
	ref, err := pt.p.roomLog.Message(ctx, in.Room, in.RefSeq)
	if errors.Is(err, roomlog.ErrNotFound) {
		return invalid("ref_seq %d: no such message", in.RefSeq)
	} else if err != nil {
		return transient(err)
	}
	if ref.Kind != pb.MessageKind_MESSAGE_KIND_TEXT {
		return invalid("ref_seq %d is not a regular message", in.RefSeq)
	}
	switch in.Kind {
	case pb.MessageKind_MESSAGE_KIND_EDIT:
		if ref.Sender != in.Sender {
			return forbidden("only the sender of message %d may edit it", in.RefSeq)
		}
	case pb.MessageKind_MESSAGE_KIND_DELETE:
		if ref.Sender != in.Sender && !canManage(actor) {
			return forbidden("only the sender of message %d or an owner or admin may delete it", in.RefSeq)
		}
	}
	return nil
}

// applyRoomChange checks the actor's rights for a room change and applies
// it to the store and the room's membership cache. actor is the actor's
// membership (found is false if the actor is not a member). Applying is
// idempotent, so a retry after a failed publish is harmless.
func (pt *partition) applyRoomChange(ctx context.Context, in *pb.InboundMessage, actor store.Member, found bool, st *roomState) error {
	if st.kind == store.RoomDirect {
		return forbidden("direct rooms have fixed members and no name")
	}
	selfJoin := in.Kind == pb.MessageKind_MESSAGE_KIND_MEMBER_JOINED && len(in.TargetUsers) == 1 && in.TargetUsers[0] == in.Sender
	switch {
	case selfJoin && st.kind == store.RoomChannel:
		// Channels are open: anyone may join to read.
	case !found:
		return notFound(in.Room)
	}
	if in.Kind == pb.MessageKind_MESSAGE_KIND_ROOM_RENAMED {
		name := in.GetBody().GetText()
		if !canManage(actor.Role) {
			return forbidden("only owners and admins rename a room")
		}
		if name == "" || len(name) > MaxRoomName || !utf8.ValidString(name) {
			return invalid("name: 1-%d bytes of UTF-8", MaxRoomName)
		}
		return transient(pt.p.st.RenameRoom(ctx, in.Room, name))
	}
	if n := len(in.TargetUsers); n == 0 || n > MaxTargetsPerEvent {
		return invalid("target_users: 1-%d users", MaxTargetsPerEvent)
	}
	targets, err := pt.memberships(ctx, st, in.Room, in.TargetUsers)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	switch in.Kind {
	case pb.MessageKind_MESSAGE_KIND_MEMBER_JOINED:
		if !selfJoin && !canManage(actor.Role) {
			return forbidden("only owners and admins add members")
		}
		var add []store.Member
		for _, u := range in.TargetUsers {
			if !protocol.ValidUserID(u) {
				return invalid("target_users: invalid user id %q", u)
			}
			if _, ok := targets[u]; !ok {
				add = append(add, store.Member{User: u, Role: store.RoleMember, JoinedAt: now})
			}
		}
		if len(add) == 0 {
			return invalid("already members")
		}
		return pt.writeMembers(ctx, st, in.Room, add)
	case pb.MessageKind_MESSAGE_KIND_MEMBER_LEFT:
		if len(in.TargetUsers) != 1 || in.TargetUsers[0] != in.Sender {
			return invalid("members leave only themselves")
		}
	case pb.MessageKind_MESSAGE_KIND_MEMBER_REMOVED:
		for _, u := range in.TargetUsers {
			t, ok := targets[u]
			switch {
			case !ok:
				return invalid("%s is not a member", u)
			case u == in.Sender:
				return invalid("to leave, use leave")
			case !canManage(actor.Role), t.Role == store.RoleOwner, t.Role == store.RoleAdmin && actor.Role != store.RoleOwner:
				return forbidden("a %s may not remove a %s", actor.Role, t.Role)
			}
		}
	case pb.MessageKind_MESSAGE_KIND_MEMBER_ROLE_CHANGED:
		role := store.Role(in.Role)
		if actor.Role != store.RoleOwner {
			return forbidden("only owners change roles")
		}
		if role != store.RoleOwner && role != store.RoleAdmin && role != store.RoleMember {
			return invalid("role: owner, admin or member")
		}
		var changed []store.Member
		for _, u := range in.TargetUsers {
			t, ok := targets[u]
			if !ok {
				return invalid("%s is not a member", u)
			}
			t.Role = role
			changed = append(changed, t)
		}
		return pt.writeMembers(ctx, st, in.Room, changed)
	}
	// Leave and remove: drop every target.
	for _, u := range in.TargetUsers {
		if err := pt.p.st.RemoveMember(ctx, in.Room, u); err != nil {
			return transient(err)
		}
		st.setMember(u, store.Member{}, false)
	}
	return nil
}

// writeMembers stores added or changed memberships and caches them.
func (pt *partition) writeMembers(ctx context.Context, st *roomState, room string, ms []store.Member) error {
	if err := pt.p.st.AddMembers(ctx, room, ms); err != nil {
		return transient(err)
	}
	for _, m := range ms {
		st.setMember(m.User, m, true)
	}
	return nil
}

// memberships reads the current membership of each user that has one.
func (pt *partition) memberships(ctx context.Context, st *roomState, room string, users []string) (map[string]store.Member, error) {
	out := make(map[string]store.Member, len(users))
	for _, u := range users {
		m, found, err := pt.member(ctx, st, room, u)
		if err != nil {
			return nil, fmt.Errorf("member %s of %s: %w", u, room, err)
		}
		if found {
			out[u] = m
		}
	}
	return out, nil
}
