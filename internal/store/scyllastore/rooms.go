package scyllastore

import (
	"context"
	"errors"
	"fmt"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/parley-chat/parley/pkg/store"
)

const (
	selectRoom     = `SELECT kind, name, created_by, created_at FROM rooms WHERE room_id = ?`
	insertRoom     = `INSERT INTO rooms (room_id, kind, name, created_by, created_at) VALUES (?, ?, ?, ?, ?)`
	updateRoomName = `UPDATE rooms SET name = ? WHERE room_id = ?`
	selectMember   = `SELECT role, joined_at FROM room_members WHERE room_id = ? AND user_id = ?`
	selectMembers  = `SELECT user_id, role, joined_at FROM room_members WHERE room_id = ? AND user_id > ? LIMIT ?`
	insertMember   = `INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)`
	deleteMember   = `DELETE FROM room_members WHERE room_id = ? AND user_id = ?`
	selectUserRoom = `SELECT room_id FROM user_rooms WHERE user_id = ? AND room_id > ? LIMIT ?`
	insertUserRoom = `INSERT INTO user_rooms (user_id, room_id) VALUES (?, ?)`
	deleteUserRoom = `DELETE FROM user_rooms WHERE user_id = ? AND room_id = ?`
)

// RenameRoom sets a room's name. The read first keeps the upsert from
// creating a row for a room that does not exist.
func (st *Store) RenameRoom(ctx context.Context, id, name string) error {
	if _, err := st.Room(ctx, id); err != nil {
		return err
	}
	if err := st.query(ctx, updateRoomName, name, id).Exec(); err != nil {
		return fmt.Errorf("scyllastore: rename room %q: %w", id, err)
	}
	return nil
}

// CreateRoom stores r and its first members, the rooms row last: it is the
// commit point, so a create that fails half-way leaves no room and can be
// retried.
//
// "Already exists" is a read before the write, not a lightweight
// transaction (four round trips of Paxos on every create). Two creates of
// the same id racing within one read-write gap could both succeed, the later
// overwriting the earlier. Room ids are random, so that needs two random ids
// to collide at the same instant; an id derived from content (one direct
// room per member pair) races only with creates of that same room. Accepted.
func (st *Store) CreateRoom(ctx context.Context, r store.Room, members []store.Member) error {
	switch _, err := st.Room(ctx, r.ID); {
	case err == nil:
		return fmt.Errorf("scyllastore: room %q: %w", r.ID, store.ErrExists)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	if err := st.putMembers(ctx, r.ID, members); err != nil {
		return err
	}
	err := st.query(ctx, insertRoom, r.ID, string(r.Kind), r.Name, r.CreatedBy, r.CreatedAt).Exec()
	if err != nil {
		return fmt.Errorf("scyllastore: create room %q: %w", r.ID, err)
	}
	return nil
}

// Room reads a room's metadata.
func (st *Store) Room(ctx context.Context, id string) (store.Room, error) {
	r := store.Room{ID: id}
	var kind string
	if err := scanOne(st.query(ctx, selectRoom, id), &kind, &r.Name, &r.CreatedBy, &r.CreatedAt); err != nil {
		return store.Room{}, fmt.Errorf("scyllastore: room %q: %w", id, err)
	}
	r.Kind = store.RoomKind(kind)
	return r, nil
}

// AddMembers upserts members of an existing room; ErrNotFound if there is
// no such room.
func (st *Store) AddMembers(ctx context.Context, room string, members []store.Member) error {
	if _, err := st.Room(ctx, room); err != nil {
		return err
	}
	return st.putMembers(ctx, room, members)
}

// putMembers writes the user_rooms index before room_members, and
// RemoveMember deletes in the opposite order: room_members grants access, so
// a call failing half-way leaves at most an index entry without access,
// which its retry repairs.
func (st *Store) putMembers(ctx context.Context, room string, members []store.Member) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(writeConcurrency)
	rows := make([]row, len(members))
	for i, m := range members {
		g.Go(func() error { return st.query(gctx, insertUserRoom, m.User, room).Exec() })
		rows[i] = row{args: []any{room, m.User, string(m.Role), m.JoinedAt}, size: len(room) + len(m.User) + len(m.Role) + 8}
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("scyllastore: index members of room %q: %w", room, err)
	}
	if err := st.writePartition(ctx, insertMember, rows); err != nil {
		return fmt.Errorf("scyllastore: add members to room %q: %w", room, err)
	}
	return nil
}

// RemoveMember revokes the membership, then drops it from the user's index.
func (st *Store) RemoveMember(ctx context.Context, room, user string) error {
	if err := st.query(ctx, deleteMember, room, user).Exec(); err != nil {
		return fmt.Errorf("scyllastore: remove %q from room %q: %w", user, room, err)
	}
	if err := st.query(ctx, deleteUserRoom, user, room).Exec(); err != nil {
		return fmt.Errorf("scyllastore: unindex room %q of %q: %w", room, user, err)
	}
	return nil
}

// Member reads one membership.
func (st *Store) Member(ctx context.Context, room, user string) (store.Member, error) {
	m := store.Member{User: user}
	var role string
	if err := scanOne(st.query(ctx, selectMember, room, user), &role, &m.JoinedAt); err != nil {
		return store.Member{}, fmt.Errorf("scyllastore: member %q of room %q: %w", user, room, err)
	}
	m.Role = store.Role(role)
	return m, nil
}

// Members pages one room_members partition in user order.
func (st *Store) Members(ctx context.Context, room, afterUser string, limit int) ([]store.Member, error) {
	var out []store.Member
	err := st.page(ctx, selectMembers, room, afterUser, limit, func(sc gocql.Scanner) error {
		var m store.Member
		var role string
		if err := sc.Scan(&m.User, &role, &m.JoinedAt); err != nil {
			return err
		}
		m.Role = store.Role(role)
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scyllastore: members of room %q: %w", room, err)
	}
	return out, nil
}

// UserRooms pages one user_rooms partition in room order.
func (st *Store) UserRooms(ctx context.Context, user, afterRoom string, limit int) ([]string, error) {
	var out []string
	err := st.page(ctx, selectUserRoom, user, afterRoom, limit, func(sc gocql.Scanner) error {
		var room string
		if err := sc.Scan(&room); err != nil {
			return err
		}
		out = append(out, room)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scyllastore: rooms of %q: %w", user, err)
	}
	return out, nil
}

// page runs stmt, a "partition = ? AND clustering > ? LIMIT ?" read, for at
// most limit rows.
func (st *Store) page(ctx context.Context, stmt, partition, after string, limit int, fn func(gocql.Scanner) error) error {
	if limit <= 0 {
		return nil
	}
	return scanAll(st.query(ctx, stmt, partition, after, limit).PageSize(min(limit, readPageSize)), fn)
}
