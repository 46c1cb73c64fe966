package node_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/gateway"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// presenceTTL is the shortest key TTL: a dead gateway's users go offline
// within it (and a second or so of expiry granularity).
const presenceTTL = 3 * time.Second

// chatConfig is testConfigOn with short presence timings, rooms of more
// than 3 members counting as large, and a typing burst of 3.
func chatConfig(t *testing.T, b backend, dir string) node.Config {
	cfg := testConfigOn(t, b, dir)
	cfg.Presence.TTL = presenceTTL
	cfg.Gateway.Signals = gateway.SignalConfig{SmallRoom: 3, OnlineInterval: 200 * time.Millisecond, TypingRate: 1, TypingBurst: 3}
	return cfg
}

// sharedStore hands a node's store to a second node in this process; the
// first node closes it.
type sharedStore struct{ store.Store }

func (sharedStore) Close() error { return nil }

// startSecondGateway starts a gateway-only node on n's NATS server and
// store, as another gateway process of the same deployment.
func startSecondGateway(t *testing.T, b backend, n *node.Node) *node.Node {
	cfg := chatConfig(t, b, t.TempDir())
	cfg.Roles = node.Roles{Gateway: true}
	cfg.Embedded, cfg.NATSURL = false, n.NATSURL()
	cfg.OpenStore = func(context.Context) (store.Store, error) { return sharedStore{n.Store()}, nil }
	return startNode(t, cfg)
}

// expectSignal reads c's signals until one satisfies match, skipping the
// others, and returns it.
func expectSignal(t *testing.T, c *client.Client, within time.Duration, what string, match func(*pb.ServerFrame) bool) *pb.ServerFrame {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-c.Signals():
			if !ok {
				t.Fatalf("connection closed waiting for %s: %v", what, c.Err())
			}
			if match(f) {
				return f
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, within)
		}
	}
}

// noSignal fails if c gets a signal satisfying match within d.
func noSignal(t *testing.T, c *client.Client, d time.Duration, what string, match func(*pb.ServerFrame) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-c.Signals():
			if ok && match(f) {
				t.Fatalf("unexpected %s: %v", what, f)
			}
		case <-deadline:
			return
		}
	}
}

func isPresence(user string, online bool) func(*pb.ServerFrame) bool {
	return func(f *pb.ServerFrame) bool {
		p := f.GetPresence()
		return p != nil && p.User == user && p.Online == online
	}
}

// Presence follows connections: a member of a small room sees another go
// online and offline; a user on two gateways stays online while either
// holds a connection; a gateway killed without a word takes its users
// offline within the TTL; a new device learns the current state at once.
func TestPresence(t *testing.T) { forEachBackend(t, testPresence) }

func testPresence(t *testing.T, b backend) {
	n1 := startNode(t, chatConfig(t, b, t.TempDir()))
	n2 := startSecondGateway(t, b, n1)
	createRoom(t, n1, "alice", "bob", "carol")
	bob := dial(t, n1, "bob", subprotocols[0])

	alice1 := dial(t, n1, "alice", subprotocols[1])
	expectSignal(t, bob, 5*time.Second, "alice online", isPresence("alice", true))
	dial(t, n2, "alice", subprotocols[0])
	dial(t, n2, "carol", subprotocols[0])
	expectSignal(t, bob, 5*time.Second, "carol online", isPresence("carol", true))

	// n2 dies: its NATS connection drops, its clients see nothing. Carol
	// was only there; alice is still on n1.
	killed := time.Now()
	n2.BusConn().Close()
	f := expectSignal(t, bob, presenceTTL+5*time.Second, "carol offline", isPresence("carol", false))
	// Last seen is about the last heartbeat: a TTL before the expiry, which
	// the server notices within a second or so.
	if seen := time.UnixMilli(f.GetPresence().LastSeen); seen.After(killed.Add(2*time.Second)) || seen.Before(killed.Add(-presenceTTL-time.Second)) {
		t.Fatalf("carol last seen %v, gateway killed at %v", seen, killed)
	}
	noSignal(t, bob, time.Second, "alice offline", isPresence("alice", false))

	closed := time.Now()
	alice1.Close()
	f = expectSignal(t, bob, 5*time.Second, "alice offline", isPresence("alice", false))
	if seen := time.UnixMilli(f.GetPresence().LastSeen); seen.Before(closed.Add(-time.Second)) || seen.After(time.Now()) {
		t.Fatalf("alice last seen %v, closed at %v", seen, closed)
	}

	// Another device of bob's learns where his contacts stand now.
	bob2 := dial(t, n1, "bob", subprotocols[1])
	f = expectSignal(t, bob2, 5*time.Second, "alice's state", func(f *pb.ServerFrame) bool { return f.GetPresence().GetUser() == "alice" })
	if p := f.GetPresence(); p.Online || p.LastSeen == 0 {
		t.Fatalf("alice's state on a new device: %v, want offline with a last-seen time", p)
	}
}

// Typing reaches the room's other subscribed members and nobody else, is
// never stored, is limited per user, and only members may send it.
func TestTyping(t *testing.T) { forEachBackend(t, testTyping) }

func testTyping(t *testing.T, b backend) {
	n := startNode(t, chatConfig(t, b, t.TempDir()))
	room := createRoom(t, n, "alice", "bob", "carol")
	alice, alice2, bob := dial(t, n, "alice", subprotocols[0]), dial(t, n, "alice", subprotocols[1]), dial(t, n, "bob", subprotocols[1])
	carol := dial(t, n, "carol", subprotocols[0]) // a member, not subscribed
	for _, c := range []*client.Client{alice, alice2, bob} {
		if _, err := c.Subscribe(ctxT(t, 10*time.Second), room, nil); err != nil {
			t.Fatal(err)
		}
	}
	isTyping := func(f *pb.ServerFrame) bool { return f.GetTyping() != nil }

	if err := alice.Typing(ctxT(t, 5*time.Second), room, true); err != nil {
		t.Fatal(err)
	}
	f := expectSignal(t, bob, 5*time.Second, "typing", isTyping)
	if ty := f.GetTyping(); ty.Room != room || ty.User != "alice" || !ty.Active {
		t.Fatalf("bob got %v", ty)
	}
	for _, c := range []*client.Client{alice, alice2, carol} {
		noSignal(t, c, 300*time.Millisecond, "typing", isTyping)
	}

	var se *client.ServerError
	if err := dial(t, n, "eve", subprotocols[0]).Typing(ctxT(t, 5*time.Second), room, true); !errors.As(err, &se) || se.Code != pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND {
		t.Fatalf("a non-member's typing: %v, want ROOM_NOT_FOUND", err)
	}

	// Burst 3 at 1/s, shared by alice's devices: of 6 quick frames at
	// least 3 are refused (one was spent above).
	limited := 0
	for i := range 6 {
		c := []*client.Client{alice, alice2}[i%2]
		err := c.Typing(ctxT(t, 5*time.Second), room, i%2 == 0)
		switch {
		case errors.As(err, &se) && se.Code == pb.ErrorCode_ERROR_CODE_RATE_LIMITED:
			limited++
		case err != nil:
			t.Fatal(err)
		}
	}
	if limited < 3 {
		t.Fatalf("%d of 6 rapid typing frames limited, want at least 3", limited)
	}
	if err := bob.Typing(ctxT(t, 5*time.Second), room, true); err != nil {
		t.Fatalf("another user is not limited: %v", err)
	}

	// Nothing was stored: the room is empty.
	page, err := bob.History(ctxT(t, 10*time.Second), &pb.HistoryRequest{Room: room})
	if err != nil || len(page.Messages) != 0 {
		t.Fatalf("history after typing: %v, %v; want empty", page, err)
	}
	expectQuiet(t, bob, 300*time.Millisecond)
}

// A small room shows who has read up to where, live and through the API;
// a large room shows how many members are online instead, and no receipts.
func TestReceiptsAndOnlineCounts(t *testing.T) { forEachBackend(t, testReceiptsAndOnlineCounts) }

func testReceiptsAndOnlineCounts(t *testing.T, b backend) {
	n := startNode(t, chatConfig(t, b, t.TempDir()))
	small := createRoom(t, n, "alice", "bob")
	alice, bob := dial(t, n, "alice", subprotocols[0]), dial(t, n, "bob", subprotocols[1])
	for _, c := range []*client.Client{alice, bob} {
		if _, err := c.Subscribe(ctxT(t, 10*time.Second), small, nil); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, alice, small, "m", 3)
	isRead := func(f *pb.ServerFrame) bool { return f.GetRead() != nil }
	if err := bob.MarkRead(ctxT(t, 5*time.Second), small, 2); err != nil {
		t.Fatal(err)
	}
	f := expectSignal(t, alice, 5*time.Second, "read receipt", isRead)
	if r := f.GetRead(); r.Room != small || r.User != "bob" || r.Seq != 2 {
		t.Fatalf("alice got receipt %v, want bob at 2", r)
	}
	noSignal(t, bob, 300*time.Millisecond, "own receipt", isRead)
	if err := alice.MarkRead(ctxT(t, 5*time.Second), small, 3); err != nil {
		t.Fatal(err)
	}
	var reads struct{ Reads []store.ReadCursor }
	if code := api(t, n, "GET", "/api/v1/rooms/"+small+"/reads", devToken(t, n, "bob"), nil, &reads); code != http.StatusOK {
		t.Fatalf("reads: HTTP %d", code)
	}
	if want := []store.ReadCursor{{User: "alice", Seq: 3}, {User: "bob", Seq: 2}}; len(reads.Reads) != 2 || reads.Reads[0] != want[0] || reads.Reads[1] != want[1] {
		t.Fatalf("reads = %v, want %v", reads.Reads, want)
	}
	if code := api(t, n, "GET", "/api/v1/rooms/"+small+"/reads", devToken(t, n, "eve"), nil, nil); code != http.StatusNotFound {
		t.Fatalf("a non-member's reads: HTTP %d, want 404", code)
	}

	large := createRoom(t, n, "u1", "u2", "u3", "u4", "u5")
	online := func(count uint64) func(*pb.ServerFrame) bool {
		return func(f *pb.ServerFrame) bool {
			o := f.GetRoomOnline()
			return o != nil && o.Room == large && o.Online == count
		}
	}
	var us []*client.Client
	for _, u := range []string{"u1", "u2", "u3"} {
		c := dial(t, n, u, subprotocols[len(us)%2])
		if _, err := c.Subscribe(ctxT(t, 10*time.Second), large, nil); err != nil {
			t.Fatal(err)
		}
		us = append(us, c)
	}
	for _, c := range us {
		expectSignal(t, c, 5*time.Second, "3 online", online(3))
	}
	us[0].Close()
	for _, c := range us[1:] {
		expectSignal(t, c, 5*time.Second, "2 online", online(2))
	}
	sendN(t, us[1], large, "l", 1)
	if err := us[1].MarkRead(ctxT(t, 5*time.Second), large, 1); err != nil {
		t.Fatal(err)
	}
	// Neither receipts nor members' presence in a large room.
	noSignal(t, us[2], 500*time.Millisecond, "receipt or presence", func(f *pb.ServerFrame) bool { return isRead(f) || f.GetPresence() != nil })
}

// A message for a user with no device online is published on
// notify.<user> for a push bridge: direct messages, and mentions of
// members; online users and non-members get none.
func TestOfflineNotifications(t *testing.T) { forEachBackend(t, testOfflineNotifications) }

func testOfflineNotifications(t *testing.T, b backend) {
	n := startNode(t, chatConfig(t, b, t.TempDir()))
	nc, err := nats.Connect(n.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	notes := make(chan *pb.Notification, 16)
	sub, err := nc.Subscribe(bus.Notifications("*"), func(m *nats.Msg) {
		note := new(pb.Notification)
		if err := proto.Unmarshal(m.Data, note); err != nil || m.Subject != bus.Notifications(note.User) {
			t.Errorf("notification %q on %s: %v", m.Data, m.Subject, err)
		}
		notes <- note
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	expectNote := func(user, room, reason string, seq uint64) {
		t.Helper()
		select {
		case note := <-notes:
			if note.User != user || note.Room != room || note.Reason != reason || note.Seq != seq || note.Sender != "alice" || note.Preview == "" {
				t.Fatalf("notification %v, want %s of %s seq %d for %s", note, reason, room, seq, user)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s notification for %s", reason, user)
		}
	}
	noNote := func() {
		t.Helper()
		select {
		case note := <-notes:
			t.Fatalf("unexpected notification %v", note)
		case <-time.After(500 * time.Millisecond):
		}
	}

	var direct struct{ ID string }
	if code := api(t, n, "POST", "/api/v1/direct", devToken(t, n, "alice"), map[string]string{"user": "bob"}, &direct); code != http.StatusCreated {
		t.Fatalf("direct room: HTTP %d", code)
	}
	group := createRoom(t, n, "alice", "bob", "carol")
	alice := dial(t, n, "alice", subprotocols[0])

	ack := sendN(t, alice, direct.ID, "dm", 1)[0]
	expectNote("bob", direct.ID, "direct", ack.Seq)

	bob := dial(t, n, "bob", subprotocols[1])
	expectSignal(t, alice, 5*time.Second, "bob online", isPresence("bob", true))
	sendN(t, alice, direct.ID, "dm-online", 1)
	noNote()

	mention := func(id string, users ...string) uint64 {
		t.Helper()
		r, err := alice.Request(ctxT(t, 10*time.Second), &pb.ClientFrame{Kind: &pb.ClientFrame_Send{Send: &pb.SendMessage{
			Room: group, ClientMsgId: id, Body: &pb.Body{Text: "hello @everyone"}, Mentions: users,
		}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetAck().Seq
	}
	seq := mention("m1", "carol", "bob", "eve") // carol offline, bob online, eve no member
	expectNote("carol", group, "mention", seq)
	noNote()
	sendN(t, alice, group, "plain", 1) // no mention: nobody
	noNote()

	bob.Close()
	expectSignal(t, alice, 5*time.Second, "bob offline", isPresence("bob", false))
	seq = mention("m2", "bob")
	expectNote("bob", group, "mention", seq)
}
