// Package store defines Parley's storage contracts. Backends (pebblestore,
// the embedded default; scyllastore for clusters) implement them and pass the
// conformance suite in storetest unchanged.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Backends may wrap these errors; match them with errors.Is.
var (
	// ErrNotFound means the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a record with that key already exists.
	ErrExists = errors.New("already exists")
)

// Store is everything a Parley node persists.
type Store interface {
	HistoryStore
	RoomStore
	AccountStore
	FriendStore
	ReadStore
	Close() error
}

// HistoryStore holds every room's sequenced messages, keyed (room, seq).
type HistoryStore interface {
	// AppendMessages upserts messages keyed (room, seq). Writing the same
	// message again is harmless (replays after a crash do exactly that).
	// When it returns nil the messages are durable.
	AppendMessages(ctx context.Context, msgs []*parleyv1.ArchivedMessage) error
	// Messages reads up to limit messages of room with from <= seq <= to
	// (to == 0: no upper bound), ascending, or descending when desc is set.
	Messages(ctx context.Context, room string, from, to uint64, limit int, desc bool) ([]*parleyv1.ArchivedMessage, error)
	// HistoryHead returns the highest stored seq of room (0 if none).
	HistoryHead(ctx context.Context, room string) (uint64, error)
}

// RoomKind says how a room behaves.
type RoomKind string

const (
	RoomGroup   RoomKind = "group"   // members talk to each other
	RoomDirect  RoomKind = "direct"  // exactly two members, one room per pair
	RoomChannel RoomKind = "channel" // only owners and admins post
)

// Role is a member's rights in a room.
type Role string

const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Room is a room's metadata.
type Room struct {
	ID        string    `json:"id"`
	Kind      RoomKind  `json:"kind"`
	Name      string    `json:"name"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// Member is one user's membership of a room.
type Member struct {
	User     string    `json:"user"`
	Role     Role      `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

// RoomStore holds rooms and their members. Membership is stored per
// (room, user) so rooms of a million members are paged, never loaded whole.
type RoomStore interface {
	// CreateRoom stores a new room with its first members; ErrExists if the
	// id is taken.
	CreateRoom(ctx context.Context, r Room, members []Member) error
	// Room returns a room's metadata or ErrNotFound.
	Room(ctx context.Context, id string) (Room, error)
	// RenameRoom changes a room's name; ErrNotFound if it does not exist.
	RenameRoom(ctx context.Context, id, name string) error
	// AddMembers adds or updates members of an existing room; ErrNotFound
	// if the room does not exist.
	AddMembers(ctx context.Context, room string, members []Member) error
	// RemoveMember removes a member; removing a non-member is not an error.
	RemoveMember(ctx context.Context, room, user string) error
	// Member returns one membership or ErrNotFound.
	Member(ctx context.Context, room, user string) (Member, error)
	// Members pages a room's members in user order, starting after afterUser.
	Members(ctx context.Context, room, afterUser string, limit int) ([]Member, error)
	// UserRooms pages the ids of the rooms a user belongs to, in id order,
	// starting after afterRoom.
	UserRooms(ctx context.Context, user, afterRoom string, limit int) ([]string, error)
}
