package store

import (
	"context"
	"time"
)

// User is an account. Its ID is random and never changes; its Handle is
// unique, stored lower-case (callers normalize), and what people search for.
// PasswordHash is secret: never send a User to a client as it is.
type User struct {
	ID           string
	Handle       string
	DisplayName  string
	PasswordHash string // argon2id, with its parameters and salt
	CreatedAt    time.Time
}

// MinSearchPrefix is the shortest handle prefix SearchUsers accepts; it lets
// a backend partition its search index by the first characters of handles.
const MinSearchPrefix = 3

// Session is a login: the refresh token family its access tokens carry the
// id of. Only a hash of the current refresh token secret is stored.
type Session struct {
	ID        string
	User      string
	TokenHash []byte
	CreatedAt time.Time
	ExpiresAt time.Time // fixed at login; rotation does not extend it
}

// AccountStore holds users and their login sessions.
type AccountStore interface {
	// CreateUser stores a new user; ErrExists if its handle is taken.
	CreateUser(ctx context.Context, u User) error
	// User returns a user by id, or ErrNotFound.
	User(ctx context.Context, id string) (User, error)
	// UserByHandle returns the user holding handle, or ErrNotFound.
	UserByHandle(ctx context.Context, handle string) (User, error)
	// SearchUsers pages the users whose handle starts with prefix (at least
	// MinSearchPrefix bytes, else an error), in handle order, starting
	// after the handle afterHandle.
	SearchUsers(ctx context.Context, prefix, afterHandle string, limit int) ([]User, error)
	// SetPasswordHash replaces a user's password hash; ErrNotFound if there
	// is no such user.
	SetPasswordHash(ctx context.Context, id, hash string) error

	// CreateSession stores a new login session.
	CreateSession(ctx context.Context, s Session) error
	// Session returns a live session of user: ErrNotFound if it does not
	// exist, was revoked or has expired.
	Session(ctx context.Context, user, id string) (Session, error)
	// Sessions returns every live session of user.
	Sessions(ctx context.Context, user string) ([]Session, error)
	// RotateSession replaces a live session's token hash, provided it is
	// still oldHash; ErrNotFound otherwise.
	RotateSession(ctx context.Context, user, id string, oldHash, newHash []byte) error
	// RevokeSession ends a session for good; revoking one that is gone is
	// not an error.
	RevokeSession(ctx context.Context, user, id string) error
}

// FriendState is where a user stands with another on friendship.
type FriendState string

const (
	NoFriendship FriendState = ""
	Outgoing     FriendState = "outgoing" // the user asked the other; pending
	Incoming     FriendState = "incoming" // the other asked the user; pending
	Friends      FriendState = "friends"
)

// Relation is how User relates to Other. It is stored once per pair, so
// both sides always agree: Mirror is the other side's view.
type Relation struct {
	User, Other string
	State       FriendState
	Since       time.Time // when State began; zero for NoFriendship
	BlockedAt   time.Time // when User blocked Other; zero if not blocked
	BlockedByAt time.Time // when Other blocked User; zero if not blocked
}

// Mirror is the relation seen from Other's side.
func (r Relation) Mirror() Relation {
	m := Relation{User: r.Other, Other: r.User, State: r.State, Since: r.Since, BlockedAt: r.BlockedByAt, BlockedByAt: r.BlockedAt}
	switch r.State {
	case Outgoing:
		m.State = Incoming
	case Incoming:
		m.State = Outgoing
	}
	return m
}

// Listings returns the listings of User that r puts Other on, each with
// since when.
func (r Relation) Listings() map[RelationList]time.Time {
	out := make(map[RelationList]time.Time, 2)
	if r.State != NoFriendship {
		out[RelationList(r.State)] = r.Since
	}
	if !r.BlockedAt.IsZero() {
		out[ListBlocked] = r.BlockedAt
	}
	return out
}

// RelationList names one of a user's listings of other users.
type RelationList string

// The friend lists share their names with the FriendStates they list.
const (
	ListFriends  RelationList = "friends"
	ListIncoming RelationList = "incoming" // requests the user received
	ListOutgoing RelationList = "outgoing" // requests the user sent
	ListBlocked  RelationList = "blocked"  // users the user blocked
)

// RelationLists are all the listings.
var RelationLists = []RelationList{ListFriends, ListIncoming, ListOutgoing, ListBlocked}

// Listed is one entry of a user's listing.
type Listed struct {
	User  string
	Since time.Time
}

// FriendStore holds friendships, friend requests and blocks.
type FriendStore interface {
	// Relation returns how user relates to other (a zero relation, with
	// User and Other set, if they never interacted).
	Relation(ctx context.Context, user, other string) (Relation, error)
	// SetRelation stores r as the pair's whole relation, replacing what
	// was there, and updates both users' listings to match.
	SetRelation(ctx context.Context, r Relation) error
	// Relations pages user's listing l in user id order, starting after
	// afterUser.
	Relations(ctx context.Context, user string, l RelationList, afterUser string, limit int) ([]Listed, error)
	// Blocked reports whether either of a and b has blocked the other.
	Blocked(ctx context.Context, a, b string) (bool, error)
}
