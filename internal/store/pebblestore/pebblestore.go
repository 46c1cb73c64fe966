// Package pebblestore is Parley's embedded store: store.Store on a Pebble
// key-value database in one directory, for `parley dev` and single nodes.
//
// # Key layout
//
// Every key starts with a prefix naming its record kind, so a room's
// history, a room's members and a user's rooms are each one contiguous key
// range, read with a bounded iterator, never a scan:
//
//	h/<room>\x00<seq: 8 bytes big-endian>  → parley.v1.ArchivedMessage (protobuf)
//	r/<room>                               → store.Room (JSON)
//	m/<room>\x00<user>                     → store.Member (JSON)
//	u/<user>\x00<room>                     → empty: the rooms of a user
//	c/<room>\x00<user>                     → read cursor (8 bytes big-endian)
//	a/<user>                               → store.User (JSON)
//	n/<handle>                             → the id of the user holding handle (JSON)
//	s/<user>\x00<session>                  → store.Session (JSON)
//	p/<user>\x00<other>                    → store.Relation (JSON), user < other
//	l/<user>\x00<list>\x00<other>          → since (JSON time): user's listings
//
// Ids never contain \x00 (writes reject them), so <id>\x00 ends an id
// unambiguously: room "a" and room "ab" have disjoint ranges. Big-endian
// seqs sort numerically, so history ranges and the head (the last key of a
// room's range) come straight from the key order.
//
// Every write is one atomic batch committed with pebble.Sync: when a method
// returns nil its effect survives a crash of the machine. Writing the same
// history key again overwrites it with the same value, so replays are
// harmless.
package pebblestore

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/pkg/store"
)

// Store is a store.Store on a Pebble database. It is safe for concurrent use.
type Store struct {
	db *pebble.DB
	// createMu makes CreateRoom's exists-check and write one step, so two
	// creates of the same id cannot both succeed.
	createMu sync.Mutex
	// cursorMu makes MarkRead's read and raise of a cursor one step;
	// striped by key so unrelated cursors do not wait for each other.
	cursorMu [cursorStripes]sync.Mutex
	// accountMu makes the checks and writes of CreateUser,
	// SetPasswordHash and RotateSession one step each.
	accountMu sync.Mutex
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database in dir.
func Open(dir string, log *zap.Logger) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: log.Sugar()})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("pebblestore: close: %w", err)
	}
	return nil
}

// Key prefixes, one per record kind (see the package comment).
const (
	historyPrefix  = "h/"
	roomPrefix     = "r/"
	memberPrefix   = "m/"
	userRoomPrefix = "u/"
)

// sep ends the first id of a two-part key.
const sep = 0x00

// scope is the common prefix of every key of id under prefix.
func scope(prefix, id string) []byte { return append([]byte(prefix+id), sep) }

// scopeEnd is the exclusive upper bound of scope(prefix, id)'s keys.
func scopeEnd(prefix, id string) []byte { return append([]byte(prefix+id), sep+1) }

// after is the smallest key greater than k.
func after(k []byte) []byte { return append(k, 0) }

func historyKey(room string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(scope(historyPrefix, room), seq)
}

func roomKey(id string) []byte             { return []byte(roomPrefix + id) }
func memberKey(room, user string) []byte   { return append(scope(memberPrefix, room), user...) }
func userRoomKey(user, room string) []byte { return append(scope(userRoomPrefix, user), room...) }
func seqOfHistoryKey(k []byte) uint64      { return binary.BigEndian.Uint64(k[len(k)-8:]) }
func roomOfUserRoomKey(user string, k []byte) string {
	return string(k[len(userRoomPrefix)+len(user)+1:])
}

// checkID rejects ids that would break the key layout.
func checkID(kind, id string) error {
	if id == "" || strings.IndexByte(id, sep) >= 0 {
		return fmt.Errorf("pebblestore: invalid %s id %q", kind, id)
	}
	return nil
}

// scan calls fn for up to limit keys in [lower, upper), ascending or
// descending. The slices passed to fn are only valid during the call.
func (s *Store) scan(ctx context.Context, lower, upper []byte, limit int, desc bool, fn func(k, v []byte) error) error {
	if limit <= 0 {
		return nil
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	first, step := it.First, it.Next
	if desc {
		first, step = it.Last, it.Prev
	}
	for ok, n := first(), 0; ok && n < limit; ok, n = step(), n+1 {
		v, err := it.ValueAndErr()
		if err != nil {
			break // Close reports it
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close() // the iterator's error, if any
}
