package gateway

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/pkg/bus"
	"github.com/parley-chat/parley/pkg/presence"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// localUser is a user with an authenticated connection or an API request
// on this gateway: the one record a gateway keeps per user.
type localUser struct {
	id     string
	limits userLimits
	refs   int32 // connections and API requests holding it; under users.mu
	// Counts the times the user's last session here closed, so a follow
	// started before knows it is stale (it wraps; a follow lasts seconds).
	epoch uint16
	// Whose presence the user follows (presence.go), set once read on the
	// user's first connection here (following).
	following bool
	friends   []*contact
	circles   []*circle
	sessions  []*session    // a few: one per device
	typing    *rate.Limiter // shared by the user's connections here; made on first use
}

// users holds the gateway's local users and whose presence they follow.
//
// Cost: no NATS subscription per user. Frames for a user's other devices
// come on the gateway's one UserEvents subscription, addressed through
// presence (publishUserEvent). Presence needs no subscription per contact
// either: every gateway takes all transitions on one wildcard subscription
// and drops those nobody here follows, and what a user follows is kept as
// shared circles (one per small room) rather than as a list of contacts
// per user.
type users struct {
	g       *Gateway
	tracker *presence.Tracker
	stop    context.CancelFunc
	done    sync.WaitGroup

	mu       sync.Mutex
	m        map[string]*localUser
	contacts map[string]*contact // followed users, by id
	circles  map[string]*circle  // followed small rooms, by room
}

func newUsers(g *Gateway) *users {
	return &users{g: g, m: make(map[string]*localUser), contacts: make(map[string]*contact), circles: make(map[string]*circle)}
}

// start runs this gateway's presence tracker and online counts.
func (u *users) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), u.g.cfg.RequestTimeout)
	defer cancel()
	tr, err := presence.NewTracker(ctx, u.g.nc, u.g.cfg.ID, u.online, u.g.log.Named("presence"))
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	u.tracker = tr
	if _, err := u.g.nc.Subscribe(bus.ContactsSubject, u.onContactsChanged); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if _, err := u.g.nc.Subscribe(bus.PresenceEvents("*"), u.onPresence); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if _, err := u.g.nc.Subscribe(bus.UserEvents(u.g.cfg.ID), u.onUserEvent); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	u.stop = stop
	u.done.Go(func() { tr.Run(runCtx) })
	u.done.Go(func() { u.g.runOnlineCounts(runCtx) })
	return nil
}

// close stops both; the tracker purges this gateway's keys, taking its
// users offline.
func (u *users) close() {
	if u.stop != nil {
		u.stop()
		u.done.Wait()
	}
}

// online lists the users with a session here.
func (u *users) online() []string {
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

// acquire returns user's record, made if needed, for an authenticated
// session or an API request; release gives it back.
func (u *users) acquire(user string) *localUser {
	u.mu.Lock()
	defer u.mu.Unlock()
	lu := u.m[user]
	if lu == nil {
		lu = &localUser{id: user}
		u.m[user] = lu
	}
	lu.refs++
	return lu
}

func (u *users) release(lu *localUser) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.releaseLocked(lu)
}

func (u *users) releaseLocked(lu *localUser) {
	if lu.refs--; lu.refs == 0 {
		delete(u.m, lu.id)
	}
}

// join adds an authenticated session, which holds lu (acquire): the user's
// first session here writes the presence key and reads the contacts.
func (u *users) join(s *session, lu *localUser) {
	u.mu.Lock()
	lu.sessions = append(lu.sessions, s)
	first := len(lu.sessions) == 1
	if first {
		u.tracker.Set(lu.id, true) // under mu, so in order with leave's
	}
	epoch := lu.epoch
	u.mu.Unlock()
	go u.follow(lu, s, first, epoch)
}

// leave removes a closed session and releases lu; the user's last session
// here ends what join started.
func (u *users) leave(s *session, lu *localUser) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if n := len(lu.sessions); n > 0 {
		if lu.sessions = without(lu.sessions, s); n == 1 && len(lu.sessions) == 0 {
			u.unfollow(lu)
			u.tracker.Set(lu.id, false)
		}
	}
	u.releaseLocked(lu)
}

// allowTyping takes a token from user's typing bucket.
func (u *users) allowTyping(user string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	lu := u.m[user]
	if lu == nil {
		return false
	}
	if lu.typing == nil {
		lu.typing = rate.NewLimiter(rate.Limit(u.g.cfg.Signals.TypingRate), u.g.cfg.Signals.TypingBurst)
	}
	return lu.typing.Allow()
}

// onUserEvent pushes a frame from another gateway to the user's sessions
// here.
func (u *users) onUserEvent(m *nats.Msg) {
	f := new(pb.ServerFrame)
	if err := proto.Unmarshal(m.Data, f); err != nil {
		u.g.log.Error("bad user event", zap.String("subject", m.Subject), zap.Error(err))
		return
	}
	u.deliver(m.Header.Get(bus.HeaderUser), nil, &signal{f: f})
}

// deliver pushes sg to user's sessions here, except origin.
func (u *users) deliver(user string, origin *session, sg *signal) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if lu := u.m[user]; lu != nil {
		for _, s := range lu.sessions {
			if s != origin {
				s.pushSignal(sg)
			}
		}
	}
}

// publishUserEvent sends f to every device of user, except the session it
// comes from: directly to the user's sessions here, and through NATS to the
// other gateways where presence has the user connected. A device connecting
// elsewhere at this very moment may miss it; it reads the state it needs
// when it connects.
func (g *Gateway) publishUserEvent(ctx context.Context, user string, from *session, f *pb.ServerFrame) {
	g.users.deliver(user, from, &signal{f: f})
	gateways, err := presence.Directory{NC: g.nc}.Gateways(ctx, user)
	if err != nil {
		g.log.Warn("user's gateways unknown, other gateways not told", zap.String("user", user), zap.Error(err))
		return
	}
	for _, gw := range gateways {
		if gw != g.cfg.ID {
			g.publish(bus.UserEvents(gw), f, nats.Header{bus.HeaderUser: []string{user}})
		}
	}
}
