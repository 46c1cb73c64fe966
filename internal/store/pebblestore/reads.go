package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/cockroachdb/pebble/v2"

	"github.com/parley-chat/parley/pkg/store"
)

// cursorPrefix keys read cursors by room, then user, so a room's readers
// are one contiguous range (see the package comment).
const cursorPrefix = "c/"

// cursorStripes is how many locks serialize MarkRead, by key hash.
const cursorStripes = 64

func cursorKey(room, user string) []byte { return append(scope(cursorPrefix, room), user...) }

// MarkRead raises the cursor under its stripe lock: the read and the
// conditional write are one step, so racing devices keep the highest.
func (s *Store) MarkRead(ctx context.Context, user, room string, seq uint64) (uint64, error) {
	if err := errors.Join(ctx.Err(), checkID("user", user), checkID("room", room)); err != nil {
		return 0, err
	}
	key := cursorKey(room, user)
	h := fnv.New32a()
	h.Write(key)
	mu := &s.cursorMu[h.Sum32()%cursorStripes]
	mu.Lock()
	defer mu.Unlock()
	cur, err := s.cursor(key)
	if err != nil || seq <= cur {
		return cur, err
	}
	if err := s.db.Set(key, binary.BigEndian.AppendUint64(nil, seq), pebble.Sync); err != nil {
		return 0, fmt.Errorf("pebblestore: mark %q read in room %q: %w", user, room, err)
	}
	return seq, nil
}

// ReadSeq reads one cursor.
func (s *Store) ReadSeq(ctx context.Context, user, room string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return s.cursor(cursorKey(room, user))
}

// cursor reads the cursor at key, 0 if there is none.
func (s *Store) cursor(key []byte) (uint64, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pebblestore: read cursor %q: %w", key, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("pebblestore: read cursor %q: %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// RoomReads pages the room's cursor range from just after afterUser.
func (s *Store) RoomReads(ctx context.Context, room, afterUser string, limit int) ([]store.ReadCursor, error) {
	var out []store.ReadCursor
	err := s.scan(ctx, after(cursorKey(room, afterUser)), scopeEnd(cursorPrefix, room), limit, false, func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("cursor %q: %d bytes, want 8", k, len(v))
		}
		out = append(out, store.ReadCursor{User: string(k[len(cursorPrefix)+len(room)+1:]), Seq: binary.BigEndian.Uint64(v)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: readers of room %q: %w", room, err)
	}
	return out, nil
}
