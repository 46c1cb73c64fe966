package follow

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/presence"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// social is a store of friendships and room memberships in memory.
type social struct {
	friends map[string][]string
	rooms   map[string][]string // room -> members
}

func (s social) Relations(_ context.Context, user string, l store.RelationList, after string, limit int) ([]store.Listed, error) {
	var out []store.Listed
	for _, f := range s.friends[user] {
		if l == store.ListFriends && f > after && len(out) < limit {
			out = append(out, store.Listed{User: f})
		}
	}
	return out, nil
}

func (s social) UserRooms(_ context.Context, user, after string, limit int) ([]string, error) {
	var out []string
	for room, members := range s.rooms {
		if slices.Contains(members, user) && room > after {
			out = append(out, room)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), limit)], nil
}

// SmallRoomMembers: rooms of up to 3 members are small.
func (s social) SmallRoomMembers(_ context.Context, room string) ([]string, bool, error) {
	if ms := s.rooms[room]; len(ms) <= 3 {
		return ms, true, nil
	}
	return nil, false, nil
}

// device is a session that records the frames pushed to it.
type device struct {
	mu     sync.Mutex
	frames []*pb.ServerFrame
}

var protoCodec = protocol.ForSubprotocol(protocol.SubprotocolProto)

func (d *device) Push(f push.Frame) {
	sf := new(pb.ServerFrame)
	if err := proto.Unmarshal(f.Encoded(protoCodec), sf); err != nil {
		panic(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.frames = append(d.frames, sf)
}

// presence lists the presence events d got, as "user:online".
func (d *device) presence() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, f := range d.frames {
		if p := f.GetPresence(); p != nil {
			s := p.User + ":offline"
			if p.Online {
				s = p.User + ":online"
			}
			out = append(out, s)
		}
	}
	return out
}

// waitPresence waits until d was told ev.
func (d *device) waitPresence(t *testing.T, ev string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(d.presence(), ev) {
		if time.Now().After(deadline) {
			t.Fatalf("presence events %v, want %s", d.presence(), ev)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gateways starts n gateways' local users on one real NATS server with the
// presence bucket.
func gateways(t *testing.T, st social, n int) ([]*Users, *nats.Conn) {
	nc := bustest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := presence.Ensure(context.Background(), js, presence.Config{TTL: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var out []*Users
	for i := range n {
		u := New(nc, st, st, zaptest.NewLogger(t), Config{GatewayID: "gw" + string(rune('1'+i))})
		if err := u.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(u.Close)
		out = append(out, u)
	}
	return out, nc
}

// connect opens a session of user on gateway u.
func connect(u *Users, user string) *device {
	d := new(device)
	u.Join(d, u.Acquire(user))
	return d
}

// A user follows friends and the members of small rooms: they hear of
// them coming online on another gateway; users who follow nobody hear
// nothing, and members of large rooms are not followed.
func TestFollowFriendsAndSmallRooms(t *testing.T) {
	st := social{
		friends: map[string][]string{"alice": {"bob"}, "bob": {"alice"}},
		rooms: map[string][]string{
			"small": {"alice", "dave"},
			"large": {"alice", "erin", "frank", "grace"},
		},
	}
	gws, _ := gateways(t, st, 2)
	alice := connect(gws[0], "alice")
	loner := connect(gws[0], "loner")
	time.Sleep(200 * time.Millisecond) // alice's follows are read
	for _, user := range []string{"bob", "dave", "erin"} {
		connect(gws[1], user)
	}
	alice.waitPresence(t, "bob:online")
	alice.waitPresence(t, "dave:online")
	time.Sleep(200 * time.Millisecond)
	if got := alice.presence(); slices.Contains(got, "erin:online") {
		t.Errorf("alice follows a large room's members: %v", got)
	}
	if got := loner.presence(); len(got) != 0 {
		t.Errorf("a user who follows nobody was told %v", got)
	}
}

// A session joining later is told where its contacts stand at once; a
// friendship announced on the bus is followed from then on.
func TestFollowTellsLateSessionsAndNewFriends(t *testing.T) {
	st := social{friends: map[string][]string{"alice": {"bob"}}}
	gws, _ := gateways(t, st, 2)
	connect(gws[1], "bob")
	connect(gws[1], "carol")
	first := connect(gws[0], "alice")
	first.waitPresence(t, "bob:online")
	second := connect(gws[0], "alice")
	second.waitPresence(t, "bob:online")

	gws[1].AnnounceContacts("alice", "carol")
	first.waitPresence(t, "carol:online")
	second.waitPresence(t, "carol:online")
}

// A user event reaches the user's other devices, here and on other
// gateways, but not the device it comes from.
func TestUserEventsReachOtherDevices(t *testing.T) {
	gws, nc := gateways(t, social{}, 2)
	lu := gws[0].Acquire("alice")
	origin, local := new(device), new(device)
	gws[0].Join(origin, lu)
	gws[0].Join(local, gws[0].Acquire("alice"))
	remote := connect(gws[1], "alice")
	// Wait until presence places alice on both gateways.
	deadline := time.Now().Add(10 * time.Second)
	for {
		gs, err := presence.Directory{NC: nc}.Gateways(context.Background(), "alice")
		if err == nil && len(gs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's gateways: %v %v", gs, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	unread := &pb.ServerFrame{Kind: &pb.ServerFrame_Unread{Unread: &pb.UnreadEvent{Room: "r1", Unread: 3}}}
	gws[0].PublishUserEvent(context.Background(), "alice", origin, unread)
	for name, d := range map[string]*device{"local": local, "remote": remote} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			d.mu.Lock()
			n := len(slices.DeleteFunc(slices.Clone(d.frames), func(f *pb.ServerFrame) bool { return f.GetUnread() == nil }))
			d.mu.Unlock()
			if n == 1 {
				break
			}
			if n > 1 || time.Now().After(deadline) {
				t.Fatalf("%s device got %d unread events, want 1", name, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	origin.mu.Lock()
	defer origin.mu.Unlock()
	for _, f := range origin.frames {
		if f.GetUnread() != nil {
			t.Fatal("the origin device got its own event back")
		}
	}
}
