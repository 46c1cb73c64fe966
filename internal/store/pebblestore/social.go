package pebblestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/parley-chat/parley/pkg/store"
)

// Relation key prefixes (see the package comment).
const (
	pairPrefix    = "p/"
	listingPrefix = "l/"
)

// pairKey is the one key of a pair's relation, whichever side asks.
func pairKey(a, b string) []byte {
	if a > b {
		a, b = b, a
	}
	return append(scope(pairPrefix, a), b...)
}

// listingID scopes a user's listing l; user ids hold no sep.
func listingID(user string, l store.RelationList) string { return user + string(rune(sep)) + string(l) }

func listingKey(user string, l store.RelationList, other string) []byte {
	return append(scope(listingPrefix, listingID(user, l)), other...)
}

// Relation reads the pair's relation, stored as seen from its lower id.
func (s *Store) Relation(ctx context.Context, user, other string) (store.Relation, error) {
	var r store.Relation
	if err := ctx.Err(); err != nil {
		return r, err
	}
	switch err := s.get(pairKey(user, other), &r); {
	case errors.Is(err, store.ErrNotFound):
		return store.Relation{User: user, Other: other}, nil
	case err != nil:
		return store.Relation{}, fmt.Errorf("pebblestore: relation of %q and %q: %w", user, other, err)
	}
	if r.User != user {
		r = r.Mirror()
	}
	return r, nil
}

// SetRelation writes the pair and both users' listings in one batch: every
// listing is set or deleted from r alone, so nothing is read first.
func (s *Store) SetRelation(ctx context.Context, r store.Relation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := errors.Join(checkID("user", r.User), checkID("user", r.Other)); err != nil {
		return err
	}
	if r.User > r.Other {
		r = r.Mirror()
	}
	err := s.commit(func(b *pebble.Batch) error {
		key := pairKey(r.User, r.Other)
		if r.State == store.NoFriendship && r.BlockedAt.IsZero() && r.BlockedByAt.IsZero() {
			if err := b.Delete(key, nil); err != nil {
				return err
			}
		} else if err := setJSON(b, key, r); err != nil {
			return err
		}
		for _, side := range []store.Relation{r, r.Mirror()} {
			listed := side.Listings()
			for _, l := range store.RelationLists {
				k := listingKey(side.User, l, side.Other)
				var err error
				if since, ok := listed[l]; ok {
					err = setJSON(b, k, since)
				} else {
					err = b.Delete(k, nil)
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pebblestore: set relation of %q and %q: %w", r.User, r.Other, err)
	}
	return nil
}

// Relations pages the listing's key range from just after afterUser.
func (s *Store) Relations(ctx context.Context, user string, l store.RelationList, afterUser string, limit int) ([]store.Listed, error) {
	id := listingID(user, l)
	start := len(scope(listingPrefix, id))
	var out []store.Listed
	err := s.scan(ctx, after(listingKey(user, l, afterUser)), scopeEnd(listingPrefix, id), limit, false, func(k, v []byte) error {
		var since time.Time
		if err := json.Unmarshal(v, &since); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		out = append(out, store.Listed{User: string(k[start:]), Since: since})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: %s of %q: %w", l, user, err)
	}
	return out, nil
}

// Blocked reads the pair's relation.
func (s *Store) Blocked(ctx context.Context, a, b string) (bool, error) {
	r, err := s.Relation(ctx, a, b)
	return !r.BlockedAt.IsZero() || !r.BlockedByAt.IsZero(), err
}
