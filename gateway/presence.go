package gateway

import (
	"context"
	"maps"
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

// presenceContacts lists the users whose presence user follows: friends,
// and the other members of user's small rooms (at most SmallRoom members;
// larger rooms show an online count instead). They are read once per
// connection to a gateway that has none of the user's yet; new friends and
// direct rooms are added live (see befriend), other rooms joined later
// count from the next connection.
func (g *Gateway) presenceContacts(ctx context.Context, user string) ([]string, error) {
	var friends []string
	for after := ""; len(friends) < maxContactRooms; {
		page, err := g.rooms.Relations(ctx, user, store.ListFriends, after, contactRoomsPage)
		if err != nil {
			return nil, err
		}
		for _, f := range page {
			friends = append(friends, f.User)
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
			return nil, err
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
			ms, _, err := g.smallRoomMembers(ctx, room)
			for _, m := range ms {
				if m.User != user {
					members[i] = append(members[i], m.User)
				}
			}
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	contacts := slices.Concat(append(members, friends)...)
	slices.Sort(contacts)
	return slices.Compact(contacts), nil
}

// follow subscribes to the presence of lu's contacts (on lu's first
// session here) and tells s where they stand now.
func (u *users) follow(lu *localUser, s *session, first bool) {
	ctx, cancel := context.WithTimeout(context.Background(), u.g.cfg.RequestTimeout)
	defer cancel()
	var contacts []string
	if first {
		var err error
		if contacts, err = u.g.presenceContacts(ctx, lu.id); err != nil {
			u.g.log.Warn("presence contacts unavailable", zap.String("user", lu.id), zap.Error(err))
		}
	}
	targets := []*session{s}
	u.mu.Lock()
	switch {
	case u.m[lu.id] != lu:
		u.mu.Unlock()
		return // all the user's sessions here closed meanwhile
	case first:
		lu.contacts, lu.following = contacts, true
		for _, c := range contacts {
			u.watch(c, lu)
		}
		// Sessions that joined while the contacts were read were told
		// nothing yet.
		targets = slices.Collect(maps.Keys(lu.sessions))
	case !lu.following:
		u.mu.Unlock()
		return // the first session's follow tells s
	}
	contacts = lu.contacts
	u.mu.Unlock()
	u.tell(ctx, contacts, targets)
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
		if lu == nil || !lu.following || slices.Contains(lu.contacts, contact) {
			u.mu.Unlock()
			continue
		}
		lu.contacts = append(lu.contacts, contact)
		u.watch(contact, lu)
		sessions := slices.Collect(maps.Keys(lu.sessions))
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

// watch adds lu to contact's followers, subscribing on the first. Under
// u.mu.
func (u *users) watch(contact string, lu *localUser) {
	w := u.watched[contact]
	if w == nil {
		sub, err := u.g.nc.Subscribe(bus.PresenceEvents(contact), u.onPresence)
		if err != nil {
			u.g.log.Warn("presence subscription failed", zap.String("contact", contact), zap.Error(err))
			return
		}
		w = &watch{sub: sub, followers: make(map[*localUser]struct{})}
		u.watched[contact] = w
	}
	w.followers[lu] = struct{}{}
}

// unfollow drops lu from its contacts' followers, unsubscribing from those
// nobody here follows any more. Under u.mu.
func (u *users) unfollow(lu *localUser) {
	for _, c := range lu.contacts {
		w := u.watched[c]
		if w == nil {
			continue
		}
		delete(w.followers, lu)
		if len(w.followers) == 0 {
			_ = w.sub.Unsubscribe()
			delete(u.watched, c)
		}
	}
}

// onPresence pushes a contact's transition to its local followers.
func (u *users) onPresence(m *nats.Msg) {
	ev := new(pb.PresenceEvent)
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		u.g.log.Error("bad presence event", zap.String("subject", m.Subject), zap.Error(err))
		return
	}
	sg := &signal{f: &pb.ServerFrame{Kind: &pb.ServerFrame_Presence{Presence: ev}}}
	u.mu.Lock()
	defer u.mu.Unlock()
	if w := u.watched[ev.User]; w != nil {
		for lu := range w.followers {
			for s := range lu.sessions {
				s.pushSignal(sg)
			}
		}
	}
}
