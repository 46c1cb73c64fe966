package scyllastore

import (
	"context"
	"errors"
	"fmt"

	"github.com/gocql/gocql"

	"github.com/parley-chat/parley/pkg/store"
)

const (
	// The cursor cell's write timestamp is the seq itself, so the highest
	// seq wins whatever order writes arrive in: monotonic without LWT.
	upsertCursor    = `UPDATE read_cursors USING TIMESTAMP ? SET seq = ? WHERE room_id = ? AND user_id = ?`
	selectCursor    = `SELECT seq FROM read_cursors WHERE room_id = ? AND user_id = ?`
	selectRoomReads = `SELECT user_id, seq FROM read_cursors WHERE room_id = ? AND user_id > ? LIMIT ?`
)

// MarkRead writes seq and reads the cursor back: a lower seq than the
// stored one loses on timestamp, so the answer is the highest seen.
func (st *Store) MarkRead(ctx context.Context, user, room string, seq uint64) (uint64, error) {
	if seq > 0 {
		if err := st.query(ctx, upsertCursor, int64(seq), int64(seq), room, user).Exec(); err != nil {
			return 0, fmt.Errorf("scyllastore: mark %q read in room %q: %w", user, room, err)
		}
	}
	return st.ReadSeq(ctx, user, room)
}

// ReadSeq reads one cursor row.
func (st *Store) ReadSeq(ctx context.Context, user, room string) (uint64, error) {
	var seq int64
	err := scanOne(st.query(ctx, selectCursor, room, user), &seq)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("scyllastore: cursor of %q in room %q: %w", user, room, err)
	}
	return uint64(seq), nil
}

// RoomReads pages one read_cursors partition in user order.
func (st *Store) RoomReads(ctx context.Context, room, afterUser string, limit int) ([]store.ReadCursor, error) {
	var out []store.ReadCursor
	err := st.page(ctx, selectRoomReads, room, afterUser, limit, func(sc gocql.Scanner) error {
		var c store.ReadCursor
		var seq int64
		if err := sc.Scan(&c.User, &seq); err != nil {
			return err
		}
		c.Seq = uint64(seq)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scyllastore: readers of room %q: %w", room, err)
	}
	return out, nil
}
