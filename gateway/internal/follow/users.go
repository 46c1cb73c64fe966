// Package follow keeps a gateway's local users (who has a connection or an
// API request here, with their rate limits) and whose presence they follow,
// and delivers to them what concerns them across gateways: presence
// transitions, and frames for a user's other devices.
//
// Cost: no NATS subscription per user or per contact. Frames for a user's
// other devices come on the gateway's one UserEvents subscription,
// addressed through presence (PublishUserEvent). Every gateway takes all
// presence transitions on one wildcard subscription and drops those nobody
// here follows, and what a user follows is kept as shared circles (one per
// small room) rather than as a list of contacts per user.
//
// Invariant: a local user's sessions learn a contact's state once when
// they join (tell), then every transition, each once per user.
package follow

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/presence"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// Config tunes the local users; zero fields take the defaults.
type Config struct {
	GatewayID      string        // this gateway, as presence names it
	RequestTimeout time.Duration // bounds reading a user's follows (default 10s)
	// TypingRate and TypingBurst limit a user's typing frames (default 1
	// per second, bursts of 5); clients resend every 3 s while typing.
	TypingRate  float64
	TypingBurst int
}

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.TypingRate <= 0 {
		c.TypingRate, c.TypingBurst = 1, 5
	}
	return c
}

// Users holds the gateway's local users and whose presence they follow.
type Users struct {
	cfg     Config
	nc      *nats.Conn
	st      Store
	sizer   RoomSizer
	pub     push.Publisher
	log     *zap.Logger
	tracker *presence.Tracker
	// online and offline count the users whose first connection here
	// opened and whose last one closed: presence transitions.
	cameOnline, wentOffline atomic.Uint64
	subs                    []*nats.Subscription
	stop                    context.CancelFunc
	done                    sync.WaitGroup

	mu       sync.Mutex
	m        map[string]*User
	contacts map[string]*contact // followed users, by id
	circles  map[string]*circle  // followed small rooms, by room
}

// New makes the local users' registry; Start connects it to the bus.
func New(nc *nats.Conn, st Store, sizer RoomSizer, log *zap.Logger, cfg Config) *Users {
	return &Users{
		cfg: cfg.WithDefaults(), nc: nc, st: st, sizer: sizer, pub: push.Publisher{NC: nc, Log: log}, log: log,
		m: make(map[string]*User), contacts: make(map[string]*contact), circles: make(map[string]*circle),
	}
}

// Start runs this gateway's presence tracker and subscribes to presence
// transitions, contact changes and user events.
func (u *Users) Start() error {
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.RequestTimeout)
	defer cancel()
	tr, err := presence.NewTracker(ctx, u.nc, u.cfg.GatewayID, u.online, u.log.Named("presence"))
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	u.tracker = tr
	for subject, h := range map[string]nats.MsgHandler{
		bus.ContactsSubject:             u.onContactsChanged,
		bus.PresenceEvents("*"):         u.onPresence,
		bus.UserEvents(u.cfg.GatewayID): u.onUserEvent,
	} {
		sub, err := u.nc.Subscribe(subject, h)
		if err != nil {
			return fmt.Errorf("presence: %w", err)
		}
		u.subs = append(u.subs, sub)
	}
	runCtx, stop := context.WithCancel(context.Background())
	u.stop = stop
	u.done.Go(func() { tr.Run(runCtx) })
	return nil
}

// Close stops the tracker, which purges this gateway's keys, taking its
// users offline.
func (u *Users) Close() {
	for _, sub := range u.subs {
		_ = sub.Unsubscribe()
	}
	if u.stop != nil {
		u.stop()
		u.done.Wait()
	}
}

// online lists the users with a session here.
func (u *Users) online() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	ids := make([]string, 0, len(u.m))
	for id, lu := range u.m {
		if len(lu.sessions) > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// Acquire returns user's record, made if needed, for an authenticated
// session or an API request; Release gives it back.
func (u *Users) Acquire(user string) *User {
	u.mu.Lock()
	defer u.mu.Unlock()
	lu := u.m[user]
	if lu == nil {
		lu = &User{id: user}
		u.m[user] = lu
	}
	lu.refs++
	return lu
}

// Release gives back a record from Acquire.
func (u *Users) Release(lu *User) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.releaseLocked(lu)
}

func (u *Users) releaseLocked(lu *User) {
	if lu.refs--; lu.refs == 0 {
		delete(u.m, lu.id)
	}
}

// Join adds an authenticated session s, which holds lu (Acquire): the
// user's first session here writes the presence key and reads whom the
// user follows. s then learns where they stand.
func (u *Users) Join(s push.Receiver, lu *User) {
	u.mu.Lock()
	lu.sessions = append(lu.sessions, s)
	first := len(lu.sessions) == 1
	if first {
		u.tracker.Set(lu.id, true) // under mu, so in order with Leave's
		u.cameOnline.Add(1)
	}
	epoch := lu.epoch
	u.mu.Unlock()
	go u.follow(lu, s, first, epoch)
}

// Leave removes a closed session and releases lu; the user's last session
// here ends what Join started.
func (u *Users) Leave(s push.Receiver, lu *User) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if n := len(lu.sessions); n > 0 {
		if lu.sessions = without(lu.sessions, s); n == 1 && len(lu.sessions) == 0 {
			u.unfollow(lu)
			u.tracker.Set(lu.id, false)
			u.wentOffline.Add(1)
		}
	}
	u.releaseLocked(lu)
}

// AllowTyping takes a token from user's typing bucket; a user with no
// session here may not type.
func (u *Users) AllowTyping(user string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	lu := u.m[user]
	if lu == nil {
		return false
	}
	if lu.typing == nil {
		lu.typing = rate.NewLimiter(rate.Limit(u.cfg.TypingRate), u.cfg.TypingBurst)
	}
	return lu.typing.Allow()
}

// onUserEvent pushes a frame from another gateway to the user's sessions
// here.
func (u *Users) onUserEvent(m *nats.Msg) {
	f := new(pb.ServerFrame)
	if err := proto.Unmarshal(m.Data, f); err != nil {
		u.log.Error("bad user event", zap.String("subject", m.Subject), zap.Error(err))
		return
	}
	u.deliver(m.Header.Get(bus.HeaderUser), nil, push.NewSignal(f))
}

// deliver pushes sg to user's sessions here, except origin.
func (u *Users) deliver(user string, origin push.Receiver, sg *push.Signal) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if lu := u.m[user]; lu != nil {
		for _, s := range lu.sessions {
			if s != origin {
				s.Push(sg)
			}
		}
	}
}

// PublishUserEvent sends f to every device of user, except the session
// from: directly to the user's sessions here, and through NATS to the
// other gateways where presence has the user connected. A device
// connecting elsewhere at this very moment may miss it; it reads the state
// it needs when it connects.
func (u *Users) PublishUserEvent(ctx context.Context, user string, from push.Receiver, f *pb.ServerFrame) {
	u.deliver(user, from, push.NewSignal(f))
	gateways, err := presence.Directory{NC: u.nc}.Gateways(ctx, user)
	if err != nil {
		u.log.Warn("user's gateways unknown, other gateways not told", zap.String("user", user), zap.Error(err))
		return
	}
	for _, gw := range gateways {
		if gw != u.cfg.GatewayID {
			u.pub.Publish(bus.UserEvents(gw), f, nats.Header{bus.HeaderUser: []string{user}})
		}
	}
}

// follow records whom lu follows (on lu's first session here) and tells s
// where they stand now.
func (u *Users) follow(lu *User, s push.Receiver, first bool, epoch uint16) {
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.RequestTimeout)
	defer cancel()
	var f follows
	if first {
		var err error
		if f, err = readFollows(ctx, u.st, u.sizer, lu.id); err != nil {
			u.log.Warn("presence contacts unavailable", zap.String("user", lu.id), zap.Error(err))
		}
	}
	targets := []push.Receiver{s}
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

// befriend makes a and b follow each other's presence from now on, where
// either has connections on this gateway (after a friendship or a direct
// room between them begins), and tells them where the other stands.
func (u *Users) befriend(a, b string) {
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.RequestTimeout)
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
func (u *Users) onContactsChanged(m *nats.Msg) {
	a, b, ok := strings.Cut(string(m.Data), " ")
	if !ok || !protocol.ValidUserID(a) || !protocol.ValidUserID(b) {
		u.log.Warn("bad contacts event", zap.ByteString("data", m.Data))
		return
	}
	u.befriend(a, b)
}

// AnnounceContacts tells every gateway that a and b now follow each other
// (a friendship or a direct room between them began).
func (u *Users) AnnounceContacts(a, b string) {
	if err := u.nc.Publish(bus.ContactsSubject, []byte(a+" "+b)); err != nil {
		u.log.Warn("contacts event not published", zap.Error(err))
	}
}

// tell pushes the current state of each contact ever seen to sessions.
func (u *Users) tell(ctx context.Context, contacts []string, sessions []push.Receiver) {
	if len(contacts) == 0 {
		return
	}
	states, err := presence.Directory{NC: u.nc}.States(ctx, contacts)
	if err != nil {
		u.log.Warn("presence unavailable", zap.Error(err))
		return
	}
	for c, st := range states {
		ev := &pb.PresenceEvent{User: c, Online: st.Online}
		if !st.LastSeen.IsZero() {
			ev.LastSeen = st.LastSeen.UnixMilli()
		}
		sg := push.NewSignal(&pb.ServerFrame{Kind: &pb.ServerFrame_Presence{Presence: ev}})
		for _, s := range sessions {
			s.Push(sg)
		}
	}
}

// contact returns id's contact, making it. Under mu.
func (u *Users) contact(id string) *contact {
	c := u.contacts[id]
	if c == nil {
		c = &contact{id: id}
		u.contacts[id] = c
	}
	return c
}

// addFriend makes lu follow id as a friend. Under mu.
func (u *Users) addFriend(lu *User, id string) {
	c := u.contact(id)
	c.friendOf = append(c.friendOf, lu)
	lu.friends = append(lu.friends, c)
}

// joinCircle makes lu follow the members of room. A circle already kept
// for room takes the members just read that it lacks. Under mu.
func (u *Users) joinCircle(lu *User, room string, members []string) {
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
// here follows any more. Under mu.
func (u *Users) unfollow(lu *User) {
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

func (u *Users) dropUnfollowed(c *contact) {
	if len(c.friendOf) == 0 && len(c.circles) == 0 {
		delete(u.contacts, c.id)
	}
}

// onPresence pushes a user's transition to the local users following
// them, once each.
func (u *Users) onPresence(m *nats.Msg) {
	ev := new(pb.PresenceEvent)
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		u.log.Error("bad presence event", zap.String("subject", m.Subject), zap.Error(err))
		return
	}
	sg := push.NewSignal(&pb.ServerFrame{Kind: &pb.ServerFrame_Presence{Presence: ev}})
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.contacts[ev.User]
	if c == nil {
		return // nobody here follows them
	}
	told := make(map[*User]struct{})
	tell := func(lu *User) {
		if _, done := told[lu]; done || lu.id == ev.User {
			return
		}
		told[lu] = struct{}{}
		for _, s := range lu.sessions {
			s.Push(sg)
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

// Transitions counts the users that came online here (their first
// connection opened) and went offline (their last one closed).
func (u *Users) Transitions() (online, offline uint64) {
	return u.cameOnline.Load(), u.wentOffline.Load()
}
