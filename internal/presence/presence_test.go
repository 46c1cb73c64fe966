package presence_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/presence"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

const ttl = 3 * time.Second // the shortest allowed

// setup starts a server with the bucket and runs keepers keepers on it.
func setup(t *testing.T, keepers int) (*nats.Conn, string) {
	t.Helper()
	nc := bustest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	if err := presence.Ensure(ctx, js, presence.Config{TTL: ttl}); err != nil {
		t.Fatal(err)
	}
	for range keepers {
		startKeeper(t, nc.ConnectedUrl())
	}
	return nc, nc.ConnectedUrl()
}

func startKeeper(t *testing.T, url string) {
	t.Helper()
	k, err := presence.NewKeeper(ctxT(t, 10*time.Second), connect(t, url), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, func(ctx context.Context) {
		if err := k.Run(ctx); err != nil {
			t.Error(err)
		}
	})
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// run runs f until the test ends.
func run(t *testing.T, f func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// gateway starts a tracker named id on a connection of its own; cancel
// stops it cleanly, closing the connection kills it.
func gateway(t *testing.T, url, id string, online ...string) (*presence.Tracker, *nats.Conn, context.CancelFunc) {
	t.Helper()
	nc := connect(t, url)
	tr, err := presence.NewTracker(ctxT(t, 5*time.Second), nc, id, func() []string { return online }, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return tr, nc, stop
}

// scene is a bucket with its keepers and one user online through a
// gateway.
type scene struct {
	nc, gwNC *nats.Conn
	url      string
	events   <-chan *pb.PresenceEvent
	stop     context.CancelFunc // stops the gateway cleanly
}

// userOnline sets up a scene: user connected through gateway id, which
// lists online as its users.
func userOnline(t *testing.T, keepers int, id, user string, online ...string) scene {
	t.Helper()
	nc, url := setup(t, keepers)
	events := watch(t, nc, user)
	gw, gwNC, stop := gateway(t, url, id, online...)
	gw.Set(user, true)
	expect(t, events, user, true, 2*time.Second)
	return scene{nc: nc, gwNC: gwNC, url: url, events: events, stop: stop}
}

// watch collects the presence events of users.
func watch(t *testing.T, nc *nats.Conn, users ...string) <-chan *pb.PresenceEvent {
	t.Helper()
	ch := make(chan *pb.PresenceEvent, 64)
	for _, u := range users {
		sub, err := nc.Subscribe(bus.PresenceEvents(u), func(m *nats.Msg) {
			ev := new(pb.PresenceEvent)
			if err := proto.Unmarshal(m.Data, ev); err != nil {
				t.Error(err)
			}
			ch <- ev
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

func expect(t *testing.T, ch <-chan *pb.PresenceEvent, user string, online bool, within time.Duration) *pb.PresenceEvent {
	t.Helper()
	select {
	case ev := <-ch:
		if ev.User != user || ev.Online != online {
			t.Fatalf("got event %v, want %s online=%v", ev, user, online)
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event %s online=%v within %v", user, online, within)
	}
	return nil
}

func quiet(t *testing.T, ch <-chan *pb.PresenceEvent, d time.Duration) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %v", ev)
	case <-time.After(d):
	}
}

func checkOnline(t *testing.T, nc *nats.Conn, user string, want bool) {
	t.Helper()
	got, err := presence.Directory{NC: nc}.Online(ctxT(t, 5*time.Second), user)
	if err != nil || got != want {
		t.Fatalf("Online(%s) = %v, %v; want %v", user, got, err, want)
	}
}

// A user on two gateways stays online until the last one says the user's
// connections there closed; then the offline event carries the last-seen
// time, which the directory keeps.
func TestOnlineUntilLastConnection(t *testing.T) {
	nc, url := setup(t, 1)
	events := watch(t, nc, "alice")
	gw1, _, _ := gateway(t, url, "gw1")
	gw2, _, _ := gateway(t, url, "gw2")

	gw1.Set("alice", true)
	expect(t, events, "alice", true, 2*time.Second)
	checkOnline(t, nc, "alice", true)
	gw2.Set("alice", true)
	expect(t, events, "alice", true, 2*time.Second) // gw2's key is new
	quiet(t, events, 300*time.Millisecond)

	gw1.Set("alice", false)
	quiet(t, events, time.Second) // still on gw2
	checkOnline(t, nc, "alice", true)

	// Renewals keep the key past its TTL.
	time.Sleep(ttl + time.Second)
	checkOnline(t, nc, "alice", true)

	before := time.Now()
	gw2.Set("alice", false)
	ev := expect(t, events, "alice", false, 2*time.Second)
	if seen := time.UnixMilli(ev.LastSeen); seen.Before(before.Add(-time.Second)) || seen.After(time.Now()) {
		t.Fatalf("last seen %v, want about %v", seen, before)
	}
	checkOnline(t, nc, "alice", false)
	st, err := presence.Directory{NC: nc}.States(ctxT(t, 5*time.Second), []string{"alice", "never"})
	if err != nil || st["alice"].LastSeen.UnixMilli() != ev.LastSeen || !st["never"].LastSeen.IsZero() {
		t.Fatalf("states = %v, %v; want alice last seen %d, never unseen", st, err, ev.LastSeen)
	}
	quiet(t, events, time.Second)
}

// A gateway that dies without a word: its keys expire within the TTL and
// its users go offline, except those still connected through another.
func TestKilledGatewayExpires(t *testing.T) {
	nc, url := setup(t, 1)
	events := watch(t, nc, "alice", "bob")
	doomed, doomedNC, _ := gateway(t, url, "doomed")
	other, _, _ := gateway(t, url, "other")
	doomed.Set("alice", true)
	doomed.Set("bob", true)
	other.Set("alice", true)
	for range 3 {
		<-events
	}
	time.Sleep(ttl) // renewed at least once
	killed := time.Now()
	doomedNC.Close()
	ev := expect(t, events, "bob", false, ttl+3*time.Second)
	if took := time.Since(killed); took > ttl+3*time.Second {
		t.Fatalf("bob went offline %v after the kill", took)
	}
	// Last seen is about the last heartbeat: a TTL before the expiry, which
	// the server notices within a second or so.
	if seen := time.UnixMilli(ev.LastSeen); seen.After(killed.Add(2*time.Second)) || seen.Before(killed.Add(-ttl)) {
		t.Fatalf("last seen %v, killed at %v", seen, killed)
	}
	quiet(t, events, time.Second)
	checkOnline(t, nc, "alice", true)
	checkOnline(t, nc, "bob", false)
}

// A gateway restarted under the same id, quicker than its heartbeat
// expires, ends the keys its previous run left.
func TestRestartedGatewayEndsItsOldKeys(t *testing.T) {
	nc, url := setup(t, 1)
	events := watch(t, nc, "frank")
	first, _, _ := gateway(t, url, "gw0")
	first.Set("frank", true)
	expect(t, events, "frank", true, 2*time.Second)
	crashed, crashedNC, _ := gateway(t, url, "gw")
	crashed.Set("frank", true)
	expect(t, events, "frank", true, 2*time.Second)
	first.Set("frank", false)
	quiet(t, events, 500*time.Millisecond) // still on gw
	crashedNC.Close()
	gateway(t, url, "gw") // back at once: its heartbeat never expired
	expect(t, events, "frank", false, 2*time.Second)
	checkOnline(t, nc, "frank", false)
}

// A gateway the Keeper took for dead (here: its keys purged as the Keeper
// does when a heartbeat expires) finds at its next beat that its heartbeat
// is gone, and writes its users' keys again.
func TestGatewayTakenForDeadComesBack(t *testing.T) {
	sc := userOnline(t, 1, "slow", "henry", "henry")
	js, _ := jetstream.New(sc.nc)
	kv, err := js.KeyValue(ctxT(t, 5*time.Second), presence.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"gw.slow.alive", "henry.slow"} {
		if err := kv.Purge(ctxT(t, 5*time.Second), key); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, sc.events, "henry", false, 2*time.Second)
	expect(t, sc.events, "henry", true, ttl)
	checkOnline(t, sc.nc, "henry", true)
}

// A gateway that died while no Keeper ran: the first Keeper to start ends
// its keys.
func TestKeeperEndsOrphanedKeys(t *testing.T) {
	sc := userOnline(t, 0, "lost", "grace")
	sc.gwNC.Close()
	time.Sleep(2*ttl + time.Second) // the heartbeat and its marker are gone
	checkOnline(t, sc.nc, "grace", true)
	startKeeper(t, sc.url)
	expect(t, sc.events, "grace", false, 3*time.Second)
	checkOnline(t, sc.nc, "grace", false)
}

// A Keeper consumer left by an earlier Parley, with an ack policy that
// cannot be updated in place, is made again.
func TestKeeperRemakesAnOldConsumer(t *testing.T) {
	nc, url := setup(t, 0)
	js, _ := jetstream.New(nc)
	ctx := ctxT(t, 10*time.Second)
	if _, err := js.CreateConsumer(ctx, "KV_"+presence.Bucket, jetstream.ConsumerConfig{
		Durable: "presence-keeper", AckPolicy: jetstream.AckNonePolicy, FilterSubject: "$KV." + presence.Bucket + ".*.*",
	}); err != nil {
		t.Fatal(err)
	}
	startKeeper(t, url)
	events := watch(t, nc, "ivan")
	gw, _, _ := gateway(t, url, "gw")
	gw.Set("ivan", true)
	expect(t, events, "ivan", true, 2*time.Second)
	gw.Set("ivan", false)
	expect(t, events, "ivan", false, 2*time.Second)
}

// A clean stop purges every key at once.
func TestCleanStopGoesOffline(t *testing.T) {
	sc := userOnline(t, 1, "gw", "carol")
	sc.stop()
	expect(t, sc.events, "carol", false, 2*time.Second)
}

// Connecting and leaving between two writes costs nothing and says
// nothing; the state ends right.
func TestFlapsSettle(t *testing.T) {
	nc, url := setup(t, 1)
	events := watch(t, nc, "dave")
	gw, _, _ := gateway(t, url, "gw")
	for range 100 {
		gw.Set("dave", true)
		gw.Set("dave", false)
	}
	gw.Set("dave", true)
	deadline := time.After(3 * time.Second)
	for online := false; !online; {
		select {
		case ev := <-events:
			online = ev.Online
		case <-deadline:
			t.Fatal("dave never online")
		}
	}
	checkOnline(t, nc, "dave", true)
}

// Of several keepers one reads: each transition is published once.
func TestOneKeeperActive(t *testing.T) {
	nc, url := setup(t, 3)
	events := watch(t, nc, "erin")
	gw, _, _ := gateway(t, url, "gw")
	for range 3 {
		gw.Set("erin", true)
		expect(t, events, "erin", true, 2*time.Second)
		gw.Set("erin", false)
		expect(t, events, "erin", false, 2*time.Second)
		quiet(t, events, 500*time.Millisecond)
	}
}

func TestEnsureRejectsShortTTL(t *testing.T) {
	nc := bustest.Connect(t)
	js, _ := jetstream.New(nc)
	if err := presence.Ensure(ctxT(t, 5*time.Second), js, presence.Config{TTL: time.Second}); err == nil {
		t.Fatal("Ensure accepted a 1s TTL")
	}
}
