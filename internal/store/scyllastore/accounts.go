package scyllastore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/parley-chat/parley/pkg/store"
)

const (
	insertUser     = `INSERT INTO users (user_id, handle, display_name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)`
	selectUser     = `SELECT handle, display_name, password_hash, created_at FROM users WHERE user_id = ?`
	updatePassword = `UPDATE users SET password_hash = ? WHERE user_id = ?`

	insertClaim  = `INSERT INTO handle_claims (handle, user_id, confirmed) VALUES (?, ?, false) USING TTL ?`
	confirmClaim = `INSERT INTO handle_claims (handle, user_id, confirmed) VALUES (?, ?, true)`
	deleteClaim  = `DELETE FROM handle_claims WHERE handle = ? AND user_id = ?`
	selectClaims = `SELECT user_id, confirmed FROM handle_claims WHERE handle = ?`

	insertSearch     = `INSERT INTO handle_search (prefix, handle, user_id) VALUES (?, ?, ?)`
	selectSearchFrom = `SELECT user_id FROM handle_search WHERE prefix = ? AND handle >= ? AND handle < ? LIMIT ?`
	selectSearchPast = `SELECT user_id FROM handle_search WHERE prefix = ? AND handle > ? AND handle < ? LIMIT ?`

	insertSession  = `INSERT INTO sessions (user_id, session_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?) USING TTL ?`
	selectSession  = `SELECT session_id, token_hash, created_at, expires_at, revoked FROM sessions WHERE user_id = ? AND session_id = ?`
	selectSessions = `SELECT session_id, token_hash, created_at, expires_at, revoked FROM sessions WHERE user_id = ?`
	rotateSession  = `UPDATE sessions USING TTL ? SET token_hash = ? WHERE user_id = ? AND session_id = ?`
	revokeSession  = `UPDATE sessions USING TTL ? SET revoked = true WHERE user_id = ? AND session_id = ?`
)

// Handle claims. Unique handles without lightweight transactions rest on
// one property of quorum reads and writes: if two clients each write a row
// at QUORUM and then read the partition at QUORUM, at least one of them
// sees the other's row. (Say A misses B's row and B misses A's. B's write
// quorum and A's read quorum share a replica, which A read before B's
// write reached it, so before B's write completed, and B's read began
// after that; symmetrically A's write completed before B's read reached
// the replica B missed it on. A's read began after A's write completed:
// a cycle in time, impossible.)
//
// So each registrant writes its own claim row (handle, user_id) with a TTL,
// reads the handle's partition back, and
//   - alone: wins. It writes the user row, then confirms the claim by
//     rewriting it without TTL (the commit point), then the search row;
//   - with a confirmed rival: loses, ErrExists;
//   - with unconfirmed rivals only: withdraws and retries after a random
//     pause, since every contender may have seen the others.
//
// At most one registrant is ever alone, and a later one sees the confirmed
// holder. A registrant that crashes leaves a claim that expires after
// claimTTL (and at worst a user row nobody can reach); a winner too slow to
// confirm well within claimTTL withdraws instead, so its claim cannot
// expire under it. Claims are written and read at QUORUM whatever the
// configured consistency: LOCAL_QUORUM in two datacenters would not overlap.
const (
	claimTTL      = time.Minute
	claimAttempts = 6
	claimBackoff  = 50 * time.Millisecond // the mean pause grows by this per attempt
)

// errContended means rivals claimed the handle at the same time.
var errContended = errors.New("handle claimed concurrently, retry")

// CreateUser claims u.Handle (see above), retrying while contended.
func (st *Store) CreateUser(ctx context.Context, u store.User) error {
	for attempt := 1; ; attempt++ {
		err := st.claim(ctx, u)
		if !errors.Is(err, errContended) || attempt == claimAttempts {
			return err
		}
		select {
		case <-time.After(rand.N(2 * claimBackoff * time.Duration(attempt))):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// claim makes one attempt at registering u.
func (st *Store) claim(ctx context.Context, u store.User) error {
	start := time.Now()
	if err := st.query(ctx, insertClaim, u.Handle, u.ID, int(claimTTL.Seconds())).Consistency(gocql.Quorum).Exec(); err != nil {
		return fmt.Errorf("scyllastore: claim handle %q: %w", u.Handle, err)
	}
	alone, taken, err := st.readClaims(ctx, u.Handle, u.ID)
	if err == nil && alone && time.Since(start) > claimTTL/2 {
		alone = false // too slow: the claim might expire before it is confirmed
	}
	if err != nil || !alone {
		// Best effort: an orphaned claim expires by itself.
		_ = st.query(ctx, deleteClaim, u.Handle, u.ID).Consistency(gocql.Quorum).Exec()
		switch {
		case err != nil:
			return err
		case taken:
			return fmt.Errorf("scyllastore: handle %q: %w", u.Handle, store.ErrExists)
		}
		return fmt.Errorf("scyllastore: handle %q: %w", u.Handle, errContended)
	}
	if err := st.query(ctx, insertUser, u.ID, u.Handle, u.DisplayName, u.PasswordHash, u.CreatedAt).Exec(); err != nil {
		return fmt.Errorf("scyllastore: create user %q: %w", u.ID, err)
	}
	if err := st.query(ctx, confirmClaim, u.Handle, u.ID).Consistency(gocql.Quorum).Exec(); err != nil {
		return fmt.Errorf("scyllastore: confirm handle %q: %w", u.Handle, err)
	}
	// After the commit point: a crash here leaves the user registered but
	// not yet found by prefix search (exact lookups work).
	if err := st.query(ctx, insertSearch, searchPartition(u.Handle), u.Handle, u.ID).Exec(); err != nil {
		return fmt.Errorf("scyllastore: index handle %q: %w", u.Handle, err)
	}
	return nil
}

// readClaims reads handle's claims at QUORUM: whether self's claim is the
// only one, and whether another is confirmed.
func (st *Store) readClaims(ctx context.Context, handle, self string) (alone, taken bool, err error) {
	seen, rivals := false, 0
	err = scanAll(st.query(ctx, selectClaims, handle).Consistency(gocql.Quorum), func(sc gocql.Scanner) error {
		var id string
		var confirmed bool
		if err := sc.Scan(&id, &confirmed); err != nil {
			return err
		}
		if id == self {
			seen = true
		} else {
			rivals++
			taken = taken || confirmed
		}
		return nil
	})
	if err != nil {
		return false, false, fmt.Errorf("scyllastore: read claims of %q: %w", handle, err)
	}
	return seen && rivals == 0, taken, nil
}

// User reads a user by id.
func (st *Store) User(ctx context.Context, id string) (store.User, error) {
	u := store.User{ID: id}
	if err := scanOne(st.query(ctx, selectUser, id), &u.Handle, &u.DisplayName, &u.PasswordHash, &u.CreatedAt); err != nil {
		return store.User{}, fmt.Errorf("scyllastore: user %q: %w", id, err)
	}
	return u, nil
}

// UserByHandle finds the handle's confirmed claim, then reads its user.
func (st *Store) UserByHandle(ctx context.Context, handle string) (store.User, error) {
	holder := ""
	err := scanAll(st.query(ctx, selectClaims, handle), func(sc gocql.Scanner) error {
		var id string
		var confirmed bool
		if err := sc.Scan(&id, &confirmed); err != nil {
			return err
		}
		if confirmed {
			holder = id
		}
		return nil
	})
	if err == nil && holder == "" {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("scyllastore: handle %q: %w", handle, err)
	}
	return st.User(ctx, holder)
}

// searchPartition is the handle_search partition of a handle or prefix.
func searchPartition(handle string) string { return handle[:store.MinSearchPrefix] }

// SearchUsers reads one handle_search partition from the prefix (or past
// afterHandle) up to the first string above the prefix, then the users.
func (st *Store) SearchUsers(ctx context.Context, prefix, afterHandle string, limit int) ([]store.User, error) {
	if len(prefix) < store.MinSearchPrefix {
		return nil, fmt.Errorf("scyllastore: search prefix %q: shorter than %d", prefix, store.MinSearchPrefix)
	}
	if limit <= 0 {
		return nil, nil
	}
	// Handles are ASCII, so raising the last byte stays valid UTF-8.
	end := prefix[:len(prefix)-1] + string(rune(prefix[len(prefix)-1]+1))
	stmt, from := selectSearchFrom, prefix
	if afterHandle >= prefix {
		stmt, from = selectSearchPast, afterHandle
	}
	var ids []string
	q := st.query(ctx, stmt, searchPartition(prefix), from, end, limit).PageSize(min(limit, readPageSize))
	err := scanAll(q, func(sc gocql.Scanner) error {
		var id string
		err := sc.Scan(&id)
		ids = append(ids, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("scyllastore: search %q: %w", prefix, err)
	}
	return st.users(ctx, ids)
}

// users reads the users of ids in parallel, in order.
func (st *Store) users(ctx context.Context, ids []string) ([]store.User, error) {
	out := make([]store.User, len(ids))
	err := parallel(ctx, len(ids), func(ctx context.Context, i int) (err error) {
		out[i], err = st.User(ctx, ids[i])
		return err
	})
	return out, err
}

// SetPasswordHash updates the hash of an existing user (the read keeps
// the upsert from creating a partial user).
func (st *Store) SetPasswordHash(ctx context.Context, id, hash string) error {
	if _, err := st.User(ctx, id); err != nil {
		return err
	}
	if err := st.query(ctx, updatePassword, hash, id).Exec(); err != nil {
		return fmt.Errorf("scyllastore: set password of %q: %w", id, err)
	}
	return nil
}

// ttlUntil is the TTL, in whole seconds rounded up, of cells that must
// live until t; 0 if t has passed.
func ttlUntil(t time.Time) int {
	return max(0, int(math.Ceil(time.Until(t).Seconds())))
}

// CreateSession writes the session with a TTL ending at its expiry.
func (st *Store) CreateSession(ctx context.Context, s store.Session) error {
	ttl := ttlUntil(s.ExpiresAt)
	if ttl == 0 {
		return fmt.Errorf("scyllastore: session %q expires in the past", s.ID)
	}
	if err := st.query(ctx, insertSession, s.User, s.ID, s.TokenHash, s.CreatedAt, s.ExpiresAt, ttl).Exec(); err != nil {
		return fmt.Errorf("scyllastore: create session %q: %w", s.ID, err)
	}
	return nil
}

// scanSession reads a sessions row; live says whether it counts.
func scanSession(sc interface{ Scan(...any) error }, user string) (s store.Session, live bool, err error) {
	s.User = user
	var revoked bool
	err = sc.Scan(&s.ID, &s.TokenHash, &s.CreatedAt, &s.ExpiresAt, &revoked)
	return s, err == nil && !revoked && time.Now().Before(s.ExpiresAt), err
}

// Session reads a live session.
func (st *Store) Session(ctx context.Context, user, id string) (store.Session, error) {
	s, live, err := scanSession(st.query(ctx, selectSession, user, id), user)
	if errors.Is(err, gocql.ErrNotFound) || (err == nil && !live) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("scyllastore: session %q of %q: %w", id, user, err)
	}
	return s, nil
}

// Sessions reads the user's partition, keeping the live sessions.
func (st *Store) Sessions(ctx context.Context, user string) ([]store.Session, error) {
	var out []store.Session
	err := scanAll(st.query(ctx, selectSessions, user).PageSize(readPageSize), func(sc gocql.Scanner) error {
		s, live, err := scanSession(sc, user)
		if live {
			out = append(out, s)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("scyllastore: sessions of %q: %w", user, err)
	}
	return out, nil
}

// RotateSession compares, then writes. Without LWT two rotations presenting
// the same token at the same instant may both pass the compare; the later
// write wins and the other's new token fails at its next refresh.
func (st *Store) RotateSession(ctx context.Context, user, id string, oldHash, newHash []byte) error {
	s, err := st.Session(ctx, user, id)
	if err != nil {
		return err
	}
	if string(s.TokenHash) != string(oldHash) {
		return fmt.Errorf("scyllastore: session %q of %q: token already rotated: %w", id, user, store.ErrNotFound)
	}
	if err := st.query(ctx, rotateSession, max(1, ttlUntil(s.ExpiresAt)), newHash, user, id).Exec(); err != nil {
		return fmt.Errorf("scyllastore: rotate session %q: %w", id, err)
	}
	return nil
}

// RevokeSession sets the session's revoked cell, which lives as long as the
// session would have; a session already gone needs nothing.
func (st *Store) RevokeSession(ctx context.Context, user, id string) error {
	s, err := st.Session(ctx, user, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := st.query(ctx, revokeSession, max(1, ttlUntil(s.ExpiresAt)), user, id).Exec(); err != nil {
		return fmt.Errorf("scyllastore: revoke session %q: %w", id, err)
	}
	return nil
}

// parallel runs fn for 0..n-1 with bounded concurrency; the first error
// cancels the others' context.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(writeConcurrency)
	for i := range n {
		g.Go(func() error { return fn(gctx, i) })
	}
	return g.Wait()
}
