package store

import "context"

// ReadCursor is how far a user has read a room.
type ReadCursor struct {
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
}

// ReadStore holds per-user per-room read cursors. A room's unread count for
// a user is the room's head seq minus the cursor, so a message costs no
// per-member write however large the room (read diffusion).
type ReadStore interface {
	// MarkRead raises user's cursor in room to seq; a lower seq never
	// moves it back (replays and racing devices are harmless). It returns
	// the cursor after the call.
	MarkRead(ctx context.Context, user, room string, seq uint64) (uint64, error)
	// ReadSeq returns user's cursor in room (0 if never set).
	ReadSeq(ctx context.Context, user, room string) (uint64, error)
	// RoomReads pages the cursors of a room's readers in user order,
	// starting after afterUser (for "who has read up to where").
	RoomReads(ctx context.Context, room, afterUser string, limit int) ([]ReadCursor, error)
}
