package pebblestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/parley-chat/parley/pkg/store"
)

// CreateRoom writes the room, its members and their index entries in one
// batch, so a room never exists without its first members.
func (s *Store) CreateRoom(ctx context.Context, r store.Room, members []store.Member) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID("room", r.ID); err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("pebblestore: encode room %q: %w", r.ID, err)
	}
	s.createMu.Lock()
	defer s.createMu.Unlock()
	switch err := s.get(roomKey(r.ID), nil); {
	case err == nil:
		return fmt.Errorf("pebblestore: room %q: %w", r.ID, store.ErrExists)
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("pebblestore: room %q: %w", r.ID, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(roomKey(r.ID), v, nil); err != nil {
		return fmt.Errorf("pebblestore: batch: %w", err)
	}
	return commitMembers(b, r.ID, members)
}

// Room reads a room's metadata.
func (s *Store) Room(ctx context.Context, id string) (store.Room, error) {
	var r store.Room
	if err := ctx.Err(); err != nil {
		return r, err
	}
	if err := s.get(roomKey(id), &r); err != nil {
		return store.Room{}, fmt.Errorf("pebblestore: room %q: %w", id, err)
	}
	return r, nil
}

// RenameRoom rewrites a room's metadata with a new name.
func (s *Store) RenameRoom(ctx context.Context, id, name string) error {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	r, err := s.Room(ctx, id)
	if err != nil {
		return err
	}
	r.Name = name
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("pebblestore: encode room %q: %w", id, err)
	}
	if err := s.db.Set(roomKey(id), v, pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: rename room %q: %w", id, err)
	}
	return nil
}

// AddMembers upserts members of an existing room; ErrNotFound if there is
// no such room. Rooms are never deleted, so the check cannot go stale.
func (s *Store) AddMembers(ctx context.Context, room string, members []store.Member) error {
	if _, err := s.Room(ctx, room); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	return commitMembers(b, room, members)
}

// commitMembers adds members' rows and index entries to b and commits it.
func commitMembers(b *pebble.Batch, room string, members []store.Member) error {
	for _, m := range members {
		if err := setMember(b, room, m); err != nil {
			return fmt.Errorf("pebblestore: member %q of room %q: %w", m.User, room, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: write members of room %q: %w", room, err)
	}
	return nil
}

func setMember(b *pebble.Batch, room string, m store.Member) error {
	if err := checkID("user", m.User); err != nil {
		return err
	}
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := b.Set(memberKey(room, m.User), v, nil); err != nil {
		return err
	}
	return b.Set(userRoomKey(m.User, room), nil, nil)
}

// RemoveMember deletes the membership and its index entry together.
func (s *Store) RemoveMember(ctx context.Context, room, user string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := errors.Join(b.Delete(memberKey(room, user), nil), b.Delete(userRoomKey(user, room), nil)); err != nil {
		return fmt.Errorf("pebblestore: batch: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: remove %q from room %q: %w", user, room, err)
	}
	return nil
}

// Member reads one membership.
func (s *Store) Member(ctx context.Context, room, user string) (store.Member, error) {
	var m store.Member
	if err := ctx.Err(); err != nil {
		return m, err
	}
	if err := s.get(memberKey(room, user), &m); err != nil {
		return store.Member{}, fmt.Errorf("pebblestore: member %q of room %q: %w", user, room, err)
	}
	return m, nil
}

// Members pages the room's member range from just after afterUser.
func (s *Store) Members(ctx context.Context, room, afterUser string, limit int) ([]store.Member, error) {
	var out []store.Member
	err := s.scan(ctx, after(memberKey(room, afterUser)), scopeEnd(memberPrefix, room), limit, false, func(k, v []byte) error {
		var m store.Member
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: members of room %q: %w", room, err)
	}
	return out, nil
}

// UserRooms pages the user's index range from just after afterRoom.
func (s *Store) UserRooms(ctx context.Context, user, afterRoom string, limit int) ([]string, error) {
	var out []string
	err := s.scan(ctx, after(userRoomKey(user, afterRoom)), scopeEnd(userRoomPrefix, user), limit, false, func(k, _ []byte) error {
		out = append(out, roomOfUserRoomKey(user, k))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: rooms of %q: %w", user, err)
	}
	return out, nil
}

// get reads key's JSON value into v (nil: only check that it exists);
// store.ErrNotFound if there is none.
func (s *Store) get(key []byte, v any) error {
	val, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if v == nil {
		return nil
	}
	return json.Unmarshal(val, v)
}
