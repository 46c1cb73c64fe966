package pebblestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/parley-chat/parley/pkg/store"
)

// Account key prefixes (see the package comment).
const (
	userPrefix    = "a/"
	handlePrefix  = "n/"
	sessionPrefix = "s/"
)

func userKey(id string) []byte          { return []byte(userPrefix + id) }
func handleKey(handle string) []byte    { return []byte(handlePrefix + handle) }
func sessionKey(user, id string) []byte { return append(scope(sessionPrefix, user), id...) }

// CreateUser writes the user and its handle in one batch; accountMu makes
// the handle check and the write one step, so a handle has one holder.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := errors.Join(checkID("user", u.ID), checkID("handle", u.Handle)); err != nil {
		return err
	}
	s.accountMu.Lock()
	defer s.accountMu.Unlock()
	switch err := s.get(handleKey(u.Handle), nil); {
	case err == nil:
		return fmt.Errorf("pebblestore: handle %q: %w", u.Handle, store.ErrExists)
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("pebblestore: handle %q: %w", u.Handle, err)
	}
	if err := s.commit(func(b *pebble.Batch) error {
		return errors.Join(setJSON(b, userKey(u.ID), u), setJSON(b, handleKey(u.Handle), u.ID))
	}); err != nil {
		return fmt.Errorf("pebblestore: create user %q: %w", u.ID, err)
	}
	return nil
}

// User reads a user by id.
func (s *Store) User(ctx context.Context, id string) (store.User, error) {
	var u store.User
	if err := ctx.Err(); err != nil {
		return u, err
	}
	if err := s.get(userKey(id), &u); err != nil {
		return store.User{}, fmt.Errorf("pebblestore: user %q: %w", id, err)
	}
	return u, nil
}

// UserByHandle resolves the handle, then reads its user.
func (s *Store) UserByHandle(ctx context.Context, handle string) (store.User, error) {
	var id string
	if err := s.get(handleKey(handle), &id); err != nil {
		return store.User{}, fmt.Errorf("pebblestore: handle %q: %w", handle, err)
	}
	return s.User(ctx, id)
}

// SearchUsers walks the handle keys starting with prefix.
func (s *Store) SearchUsers(ctx context.Context, prefix, afterHandle string, limit int) ([]store.User, error) {
	if len(prefix) < store.MinSearchPrefix {
		return nil, fmt.Errorf("pebblestore: search prefix %q: shorter than %d", prefix, store.MinSearchPrefix)
	}
	lower := handleKey(prefix)
	if k := after(handleKey(afterHandle)); bytes.Compare(k, lower) > 0 {
		lower = k
	}
	var ids []string
	err := s.scan(ctx, lower, prefixEnd(handleKey(prefix)), limit, false, func(k, v []byte) error {
		var id string
		if err := json.Unmarshal(v, &id); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: search %q: %w", prefix, err)
	}
	users := make([]store.User, len(ids))
	for i, id := range ids {
		if users[i], err = s.User(ctx, id); err != nil {
			return nil, err
		}
	}
	return users, nil
}

// prefixEnd is the smallest key above every key starting with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// SetPasswordHash rewrites the user with its new hash.
func (s *Store) SetPasswordHash(ctx context.Context, id, hash string) error {
	s.accountMu.Lock()
	defer s.accountMu.Unlock()
	u, err := s.User(ctx, id)
	if err != nil {
		return err
	}
	u.PasswordHash = hash
	if err := s.commit(func(b *pebble.Batch) error { return setJSON(b, userKey(id), u) }); err != nil {
		return fmt.Errorf("pebblestore: set password of %q: %w", id, err)
	}
	return nil
}

// CreateSession writes the session and drops the user's expired ones in the
// same batch, so a user's sessions stay bounded by the logins of one
// session lifetime.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	if err := errors.Join(checkID("user", sess.User), checkID("session", sess.ID)); err != nil {
		return err
	}
	expired, err := s.sessions(ctx, sess.User, func(x store.Session) bool { return !live(x) })
	if err != nil {
		return err
	}
	err = s.commit(func(b *pebble.Batch) error {
		for _, x := range expired {
			if err := b.Delete(sessionKey(x.User, x.ID), nil); err != nil {
				return err
			}
		}
		return setJSON(b, sessionKey(sess.User, sess.ID), sess)
	})
	if err != nil {
		return fmt.Errorf("pebblestore: create session %q: %w", sess.ID, err)
	}
	return nil
}

func live(s store.Session) bool { return time.Now().Before(s.ExpiresAt) }

// Session reads a live session.
func (s *Store) Session(ctx context.Context, user, id string) (store.Session, error) {
	var sess store.Session
	if err := ctx.Err(); err != nil {
		return sess, err
	}
	err := s.get(sessionKey(user, id), &sess)
	if err == nil && !live(sess) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("pebblestore: session %q of %q: %w", id, user, err)
	}
	return sess, nil
}

// Sessions lists the user's live sessions.
func (s *Store) Sessions(ctx context.Context, user string) ([]store.Session, error) {
	return s.sessions(ctx, user, live)
}

// sessions returns the sessions of user that keep says to.
func (s *Store) sessions(ctx context.Context, user string, keep func(store.Session) bool) ([]store.Session, error) {
	var out []store.Session
	err := s.scan(ctx, scope(sessionPrefix, user), scopeEnd(sessionPrefix, user), math.MaxInt, false, func(k, v []byte) error {
		var sess store.Session
		if err := json.Unmarshal(v, &sess); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		if keep(sess) {
			out = append(out, sess)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: sessions of %q: %w", user, err)
	}
	return out, nil
}

// RotateSession compares and replaces the hash under accountMu, so of two
// rotations presenting the same token only one succeeds.
func (s *Store) RotateSession(ctx context.Context, user, id string, oldHash, newHash []byte) error {
	s.accountMu.Lock()
	defer s.accountMu.Unlock()
	sess, err := s.Session(ctx, user, id)
	if err != nil {
		return err
	}
	if !bytes.Equal(sess.TokenHash, oldHash) {
		return fmt.Errorf("pebblestore: session %q of %q: token already rotated: %w", id, user, store.ErrNotFound)
	}
	sess.TokenHash = newHash
	if err := s.commit(func(b *pebble.Batch) error { return setJSON(b, sessionKey(user, id), sess) }); err != nil {
		return fmt.Errorf("pebblestore: rotate session %q: %w", id, err)
	}
	return nil
}

// RevokeSession deletes the session; ids are random and never reused.
func (s *Store) RevokeSession(ctx context.Context, user, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.db.Delete(sessionKey(user, id), pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: revoke session %q: %w", id, err)
	}
	return nil
}

// commit runs fill on a new batch and commits it durably.
func (s *Store) commit(fill func(b *pebble.Batch) error) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// setJSON adds key = JSON(v) to b.
func setJSON(b *pebble.Batch, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Set(key, data, nil)
}
