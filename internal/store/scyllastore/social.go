package scyllastore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/parley-chat/parley/pkg/store"
)

const (
	selectRelation = `SELECT state, since, lo_blocked_at, hi_blocked_at FROM relations WHERE user_lo = ? AND user_hi = ?`
	insertRelation = `INSERT INTO relations (user_lo, user_hi, state, since, lo_blocked_at, hi_blocked_at) VALUES (?, ?, ?, ?, ?, ?)`
	insertListing  = `INSERT INTO user_relations (user_id, list, other_id, since) VALUES (?, ?, ?, ?)`
	deleteListing  = `DELETE FROM user_relations WHERE user_id = ? AND list = ? AND other_id = ?`
	selectListing  = `SELECT other_id, since FROM user_relations WHERE user_id = ? AND list = ? AND other_id > ? LIMIT ?`
)

// Relation reads the pair's row, stored as seen from its lower id.
func (st *Store) Relation(ctx context.Context, user, other string) (store.Relation, error) {
	r := store.Relation{User: min(user, other), Other: max(user, other)}
	var state string
	err := scanOne(st.query(ctx, selectRelation, r.User, r.Other), &state, &r.Since, &r.BlockedAt, &r.BlockedByAt)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Relation{User: user, Other: other}, nil
	case err != nil:
		return store.Relation{}, fmt.Errorf("scyllastore: relation of %q and %q: %w", user, other, err)
	}
	r.State = store.FriendState(state)
	if r.User != user {
		r = r.Mirror()
	}
	return r, nil
}

// SetRelation writes each user's listings (one single-partition batch
// each, in parallel), then the pair's row. Every statement carries the
// same write timestamp, so of two SetRelations of a pair racing, the later
// one wins in every row alike and the listings never disagree with the
// pair. A call failing half-way changes at most listings: its retry, or
// the next change of the pair, rewrites them all.
func (st *Store) SetRelation(ctx context.Context, r store.Relation) error {
	if r.User > r.Other {
		r = r.Mirror()
	}
	ts := time.Now().UnixMicro()
	sides := []store.Relation{r, r.Mirror()}
	err := parallel(ctx, len(sides), func(ctx context.Context, i int) error {
		side := sides[i]
		listed := side.Listings()
		b := st.s.Batch(gocql.UnloggedBatch).WithContext(ctx).WithTimestamp(ts)
		for _, l := range store.RelationLists {
			if since, ok := listed[l]; ok {
				b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: insertListing, Args: []any{side.User, string(l), side.Other, since}, Idempotent: true})
			} else {
				b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: deleteListing, Args: []any{side.User, string(l), side.Other}, Idempotent: true})
			}
		}
		return b.Exec()
	})
	if err == nil {
		err = st.query(ctx, insertRelation, r.User, r.Other, string(r.State), nullTime(r.Since), nullTime(r.BlockedAt), nullTime(r.BlockedByAt)).WithTimestamp(ts).Exec()
	}
	if err != nil {
		return fmt.Errorf("scyllastore: set relation of %q and %q: %w", r.User, r.Other, err)
	}
	return nil
}

// nullTime stores a zero time as null.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Relations pages one listing of the user's user_relations partition.
func (st *Store) Relations(ctx context.Context, user string, l store.RelationList, afterUser string, limit int) ([]store.Listed, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []store.Listed
	q := st.query(ctx, selectListing, user, string(l), afterUser, limit).PageSize(min(limit, readPageSize))
	err := scanAll(q, func(sc gocql.Scanner) error {
		var e store.Listed
		err := sc.Scan(&e.User, &e.Since)
		out = append(out, e)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("scyllastore: %s of %q: %w", l, user, err)
	}
	return out, nil
}

// Blocked reads the pair's row.
func (st *Store) Blocked(ctx context.Context, a, b string) (bool, error) {
	r, err := st.Relation(ctx, a, b)
	return !r.BlockedAt.IsZero() || !r.BlockedByAt.IsZero(), err
}
