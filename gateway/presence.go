package gateway

import (
	"context"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/pkg/bus"
	"github.com/parley-chat/parley/pkg/presence"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// A user's contacts are read from their first maxContactRooms rooms, a
// page at a time, on connect.
const (
	maxContactRooms  = 1000
	contactRoomsPage = 500
)

// follows is what a user's presence follows: friends, and the members of
// the user's small rooms (at most SmallRoom members; larger rooms show an
// online count instead).
type follows struct {
	friends []string
	rooms   map[string][]string // small room -> its members
}

// presenceFollows reads what user follows. It is read once per connection
// to a gateway that has none of the user's yet; new friends and direct
// rooms are added live (see befriend), other rooms joined later count from
// the next connection.
func (g *Gateway) presenceFollows(ctx context.Context, user string) (follows, error) {
	var f follows
	for after := ""; len(f.friends) < maxContactRooms; {
		page, err := g.rooms.Relations(ctx, user, store.ListFriends, after, contactRoomsPage)
		if err != nil {
			return f, err
		}
		for _, r := range page {
			f.friends = append(f.friends, r.User)
		}
		if len(page) < contactRoomsPage {
			break
		}
		after = page[len(page)-1].User
	}
	var rooms []string
	for after := ""; len(rooms) < maxContactRooms; {
		page, err := g.rooms.UserRooms(ctx, user, after, contactRoomsPage)
		if err != nil {
			return f, err
		}
		rooms = append(rooms, page...)
		if len(page) < contactRoomsPage {
			break
		}
		after = page[len(page)-1]
	}
	members := make([][]string, len(rooms))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(16)
	for i, room := range rooms {
		eg.Go(func() error {
			ms, small, err := g.smallRoomMembers(ctx, room)
			if small {
				members[i] = make([]string, 0, len(ms))
				for _, m := range ms {
					members[i] = append(members[i], m.User)
				}
			}
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return f, err
	}
	f.rooms = make(map[string][]string)
	for i, room := range rooms {
		if members[i] != nil {
			f.rooms[room] = members[i]
		}
	}
	return f, nil
}

// A contact is a user whose presence local users follow: as a friend
// (friendOf), or as a member of a small room of theirs (circles).
type contact struct {
	id       string
	friendOf []*localUser
	circles  []*circle
}

// A circle is a small room some local users are in: they follow all its
// members. Kept once per room, not per follower, so following the members
// of small rooms costs a gateway per room, not per pair of members.
type circle struct {
	room    string
	members []*contact   // as read when followed, new members merged in
	locals  []*localUser // local users following the room's members
}

// follow records whom lu follows (on lu's first session here) and tells s
// where they stand now.
func (u *users) follow(lu *localUser, s *session, first bool, epoch uint16) {
	ctx, cancel := context.WithTimeout(context.Background(), u.g.cfg.RequestTimeout)
	defer cancel()
	var f follows
	if first {
		var err error
		if f, err = u.g.presenceFollows(ctx, lu.id); err != nil {
			u.g.log.Warn("presence contacts unavailable", zap.String("user", lu.id), zap.Error(err))
		}
	}
	targets := []*session{s}
	u.mu.Lock()
	switch {
	case lu.epoch != epoch:
		u.mu.Unlock()
		return // all the user's sessions here closed meanwhile
	case first:
		lu.following = true
		lu.friends = make([]*contact, 0, len(f.friends))
		lu.circles = make([]*circle, 0, len(f.rooms))
		for _, id := range f.friends {
			u.addFriend(lu, id)
		}
		for room, members := range f.rooms {
			u.joinCircle(lu, room, members)
		}
		// Sessions that joined while the contacts were read were told
		// nothing yet.
		targets = slices.Clone(lu.sessions)
	case !lu.following:
		u.mu.Unlock()
		return // the first session's follow tells s
	}
	contacts := lu.contactIDs()
	u.mu.Unlock()
	u.tell(ctx, contacts, targets)
}

// contactIDs lists whom lu follows, once each. Under u.mu.
func (lu *localUser) contactIDs() []string {
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

// follows reports whether lu follows id already. Under u.mu.
func (lu *localUser) follows(id string) bool {
	isID := func(c *contact) bool { return c.id == id }
	return slices.ContainsFunc(lu.friends, isID) ||
		slices.ContainsFunc(lu.circles, func(ci *circle) bool { return slices.ContainsFunc(ci.members, isID) })
}

// befriend makes a and b follow each other's presence from now on, where
// either has connections on this gateway (after a friendship or a direct
// room between them begins), and tells them where the other stands.
func (u *users) befriend(a, b string) {
	ctx, cancel := context.WithTimeout(context.Background(), u.g.cfg.RequestTimeout)
	defer cancel()
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		user, contact := pair[0], pair[1]
		u.mu.Lock()
		lu := u.m[user]
		if lu == nil || !lu.following || lu.follows(contact) {
			u.mu.Unlock()
			continue
		}
		u.addFriend(lu, contact)
		sessions := slices.Clone(lu.sessions)
		u.mu.Unlock()
		u.tell(ctx, []string{contact}, sessions)
	}
}

// onContactsChanged handles a bus.ContactsSubject event: "<a> <b>".
func (u *users) onContactsChanged(m *nats.Msg) {
	a, b, ok := strings.Cut(string(m.Data), " ")
	if !ok || !bus.ValidUserID(a) || !bus.ValidUserID(b) {
		u.g.log.Warn("bad contacts event", zap.ByteString("data", m.Data))
		return
	}
	u.befriend(a, b)
}

// announceContacts tells every gateway that a and b now follow each other.
func (g *Gateway) announceContacts(a, b string) {
	if err := g.nc.Publish(bus.ContactsSubject, []byte(a+" "+b)); err != nil {
		g.log.Warn("contacts event not published", zap.Error(err))
	}
}

// tell pushes the current state of each contact ever seen to sessions.
func (u *users) tell(ctx context.Context, contacts []string, sessions []*session) {
	if len(contacts) == 0 {
		return
	}
	states, err := presence.Directory{NC: u.g.nc}.States(ctx, contacts)
	if err != nil {
		u.g.log.Warn("presence unavailable", zap.Error(err))
		return
	}
	for c, st := range states {
		ev := &pb.PresenceEvent{User: c, Online: st.Online}
		if !st.LastSeen.IsZero() {
			ev.LastSeen = st.LastSeen.UnixMilli()
		}
		sg := &signal{f: &pb.ServerFrame{Kind: &pb.ServerFrame_Presence{Presence: ev}}}
		for _, s := range sessions {
			s.pushSignal(sg)
		}
	}
}

// contact returns id's contact, making it. Under u.mu.
func (u *users) contact(id string) *contact {
	c := u.contacts[id]
	if c == nil {
		c = &contact{id: id}
		u.contacts[id] = c
	}
	return c
}

// addFriend makes lu follow id as a friend. Under u.mu.
func (u *users) addFriend(lu *localUser, id string) {
	c := u.contact(id)
	c.friendOf = append(c.friendOf, lu)
	lu.friends = append(lu.friends, c)
}

// joinCircle makes lu follow the members of room. A circle already kept
// for room takes the members just read that it lacks. Under u.mu.
func (u *users) joinCircle(lu *localUser, room string, members []string) {
	ci := u.circles[room]
	if ci == nil {
		ci = &circle{room: room, members: make([]*contact, 0, len(members))}
		u.circles[room] = ci
	}
	for _, id := range members {
		if !slices.ContainsFunc(ci.members, func(c *contact) bool { return c.id == id }) {
			c := u.contact(id)
			c.circles = append(c.circles, ci)
			ci.members = append(ci.members, c)
		}
	}
	ci.locals = append(ci.locals, lu)
	lu.circles = append(lu.circles, ci)
}

// unfollow forgets whom lu followed, and the contacts and circles nobody
// here follows any more. Under u.mu.
func (u *users) unfollow(lu *localUser) {
	for _, c := range lu.friends {
		c.friendOf = without(c.friendOf, lu)
		u.dropUnfollowed(c)
	}
	for _, ci := range lu.circles {
		if ci.locals = without(ci.locals, lu); len(ci.locals) > 0 {
			continue
		}
		delete(u.circles, ci.room)
		for _, c := range ci.members {
			c.circles = without(c.circles, ci)
			u.dropUnfollowed(c)
		}
	}
	lu.friends, lu.circles, lu.following = nil, nil, false
	lu.epoch++
}

func (u *users) dropUnfollowed(c *contact) {
	if len(c.friendOf) == 0 && len(c.circles) == 0 {
		delete(u.contacts, c.id)
	}
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

// onPresence pushes a user's transition to the local users following
// them, once each.
func (u *users) onPresence(m *nats.Msg) {
	ev := new(pb.PresenceEvent)
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		u.g.log.Error("bad presence event", zap.String("subject", m.Subject), zap.Error(err))
		return
	}
	sg := &signal{f: &pb.ServerFrame{Kind: &pb.ServerFrame_Presence{Presence: ev}}}
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.contacts[ev.User]
	if c == nil {
		return // nobody here follows them
	}
	told := make(map[*localUser]struct{})
	tell := func(lu *localUser) {
		if _, done := told[lu]; done || lu.id == ev.User {
			return
		}
		told[lu] = struct{}{}
		for _, s := range lu.sessions {
			s.pushSignal(sg)
		}
	}
	for _, lu := range c.friendOf {
		tell(lu)
	}
	for _, ci := range c.circles {
		for _, lu := range ci.locals {
			tell(lu)
		}
	}
}
