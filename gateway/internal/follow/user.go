package follow

import (
	"slices"

	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/gateway/internal/ratelimit"
)

// User is a user with an authenticated connection or an API request on
// this gateway: the one record a gateway keeps per user. Its fields are
// guarded by Users.mu.
type User struct {
	id     string
	limits ratelimit.User
	refs   int32 // connections and API requests holding it
	// Counts the times the user's last session here closed, so a follow
	// started before knows it is stale (it wraps; a follow lasts seconds).
	epoch uint16
	// Whose presence the user follows, set once read on the user's first
	// connection here (following).
	following bool
	friends   []*contact
	circles   []*circle
	sessions  []push.Receiver // a few: one per device
	typing    *rate.Limiter   // shared by the user's connections here; made on first use
}

// ID is the user's id.
func (lu *User) ID() string { return lu.id }

// Limits are the user's rate limits on this gateway (safe to use without
// a lock).
func (lu *User) Limits() *ratelimit.User { return &lu.limits }

// contactIDs lists whom lu follows, once each.
func (lu *User) contactIDs() []string {
	var ids []string
	for _, c := range lu.friends {
		ids = append(ids, c.id)
	}
	for _, ci := range lu.circles {
		for _, c := range ci.members {
			if c.id != lu.id {
				ids = append(ids, c.id)
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// follows reports whether lu follows id already.
func (lu *User) follows(id string) bool {
	isID := func(c *contact) bool { return c.id == id }
	return slices.ContainsFunc(lu.friends, isID) ||
		slices.ContainsFunc(lu.circles, func(ci *circle) bool { return slices.ContainsFunc(ci.members, isID) })
}

// A contact is a user whose presence local users follow: as a friend
// (friendOf), or as a member of a small room of theirs (circles).
type contact struct {
	id       string
	friendOf []*User
	circles  []*circle
}

// A circle is a small room some local users are in: they follow all its
// members. Kept once per room, not per follower, so following the members
// of small rooms costs a gateway per room, not per pair of members.
type circle struct {
	room    string
	members []*contact // as read when followed, new members merged in
	locals  []*User    // local users following the room's members
}

// without removes one occurrence of x from s, not keeping order.
func without[T comparable](s []T, x T) []T {
	if i := slices.Index(s, x); i >= 0 {
		s[i] = s[len(s)-1]
		s[len(s)-1] = *new(T)
		s = s[:len(s)-1]
	}
	return s
}
