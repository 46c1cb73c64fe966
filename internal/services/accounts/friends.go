package accounts

import (
	"context"
	"errors"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// Friends: a request moves a pair from no friendship to outgoing (as seen
// by the asker), accepting it to friends; declining, cancelling and
// removing move it back. A block, by either side, ends the friendship and
// any request, and refuses new requests both ways until lifted; blocking
// and unblocking are idempotent. Each action reads the pair's relation,
// checks it, and writes the whole new relation; an action that fails its
// check changes nothing.

// target checks t and reads its user: TARGET_IS_SELF, USER_NOT_FOUND.
func (s *service) target(ctx context.Context, t Target) (store.User, error) {
	if t.User == t.Actor {
		return store.User{}, protocol.Reject(pb.ErrorCode_ERROR_CODE_TARGET_IS_SELF, "you cannot do that to yourself")
	}
	return s.userByID(ctx, t.User)
}

func blocked(r store.Relation) bool { return !r.BlockedAt.IsZero() || !r.BlockedByAt.IsZero() }

func (s *service) request(ctx context.Context, t Target) (Entry, error) {
	u, err := s.target(ctx, t)
	if err != nil {
		return Entry{}, err
	}
	r, err := s.st.Relation(ctx, t.Actor, t.User)
	if err != nil {
		return Entry{}, err
	}
	switch {
	case blocked(r):
		return Entry{}, protocol.Reject(pb.ErrorCode_ERROR_CODE_BLOCKED, "one of you has blocked the other")
	case r.State == store.Friends:
		return Entry{}, protocol.Reject(pb.ErrorCode_ERROR_CODE_ALREADY_FRIENDS, "you are already friends")
	case r.State == store.Outgoing:
		return Entry{}, protocol.Reject(pb.ErrorCode_ERROR_CODE_REQUEST_EXISTS, "you already asked %s", t.User)
	case r.State == store.Incoming:
		return Entry{}, protocol.Reject(pb.ErrorCode_ERROR_CODE_REQUEST_EXISTS, "%s already asked you: accept their request", t.User)
	}
	r.State, r.Since = store.Outgoing, now()
	if err := s.st.SetRelation(ctx, r); err != nil {
		return Entry{}, err
	}
	return Entry{User: profile(u), Since: r.Since}, nil
}

// transition moves the pair of t from state from to state to, or fails
// with code when it is not in from.
func (s *service) transition(ctx context.Context, t Target, from, to store.FriendState, code pb.ErrorCode, message string) (store.Relation, error) {
	r, err := s.st.Relation(ctx, t.Actor, t.User)
	if err != nil {
		return r, err
	}
	if r.State != from {
		return r, protocol.Reject(code, "%s", message)
	}
	r.State, r.Since = to, time.Time{}
	if to != store.NoFriendship {
		r.Since = now()
	}
	return r, s.st.SetRelation(ctx, r)
}

func (s *service) accept(ctx context.Context, t Target) (Entry, error) {
	r, err := s.transition(ctx, t, store.Incoming, store.Friends, pb.ErrorCode_ERROR_CODE_REQUEST_NOT_FOUND, "no friend request from "+t.User)
	if err != nil {
		return Entry{}, err
	}
	u, err := s.userByID(ctx, t.User)
	return Entry{User: profile(u), Since: r.Since}, err
}

func (s *service) decline(ctx context.Context, t Target) (struct{}, error) {
	_, err := s.transition(ctx, t, store.Incoming, store.NoFriendship, pb.ErrorCode_ERROR_CODE_REQUEST_NOT_FOUND, "no friend request from "+t.User)
	return struct{}{}, err
}

func (s *service) cancel(ctx context.Context, t Target) (struct{}, error) {
	_, err := s.transition(ctx, t, store.Outgoing, store.NoFriendship, pb.ErrorCode_ERROR_CODE_REQUEST_NOT_FOUND, "no friend request to "+t.User)
	return struct{}{}, err
}

func (s *service) remove(ctx context.Context, t Target) (struct{}, error) {
	_, err := s.transition(ctx, t, store.Friends, store.NoFriendship, pb.ErrorCode_ERROR_CODE_NOT_FRIENDS, t.User+" is not your friend")
	return struct{}{}, err
}

func (s *service) block(ctx context.Context, t Target) (struct{}, error) {
	if _, err := s.target(ctx, t); err != nil {
		return struct{}{}, err
	}
	r, err := s.st.Relation(ctx, t.Actor, t.User)
	if err != nil || !r.BlockedAt.IsZero() {
		return struct{}{}, err
	}
	r.State, r.Since, r.BlockedAt = store.NoFriendship, time.Time{}, now()
	return struct{}{}, s.st.SetRelation(ctx, r)
}

func (s *service) unblock(ctx context.Context, t Target) (struct{}, error) {
	r, err := s.st.Relation(ctx, t.Actor, t.User)
	if err != nil || r.BlockedAt.IsZero() {
		return struct{}{}, err
	}
	r.BlockedAt = time.Time{}
	return struct{}{}, s.st.SetRelation(ctx, r)
}

// list pages one of the actor's listings with the listed users' profiles.
func (s *service) list(ctx context.Context, q ListQuery) (EntryPage, error) {
	page := EntryPage{Entries: []Entry{}}
	if !slices.Contains(store.RelationLists, q.List) {
		return page, protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "list: one of friends, incoming, outgoing, blocked")
	}
	limit, e := pageLimit(q.Limit)
	if e != nil {
		return page, e
	}
	listed, err := s.st.Relations(ctx, q.Actor, q.List, q.After, limit)
	if err != nil {
		return page, err
	}
	page.Entries = make([]Entry, len(listed))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, l := range listed {
		g.Go(func() error {
			u, err := s.st.User(gctx, l.User)
			if errors.Is(err, store.ErrNotFound) {
				u, err = store.User{ID: l.User}, nil // a user without an account (development tokens)
			}
			page.Entries[i] = Entry{User: profile(u), Since: l.Since}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return page, err
	}
	if len(listed) == limit {
		page.Next = listed[limit-1].User
	}
	return page, nil
}
