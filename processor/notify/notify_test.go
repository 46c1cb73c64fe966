package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"

	"github.com/nats-io/nats.go"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/presence"
	"github.com/parley-chat/parley/pkg/store"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Previews stop at previewLen bytes without splitting a character.
func TestPreview(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"", ""},
		{"short", "short"},
		{strings.Repeat("a", previewLen), strings.Repeat("a", previewLen)},
		{strings.Repeat("a", previewLen+1), strings.Repeat("a", previewLen)},
		// 3-byte characters: 46 fit in 140 bytes (138), the 47th would not.
		{strings.Repeat("€", 60), strings.Repeat("€", 46)},
	} {
		got := preview(c.text)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("preview(%d bytes) = %d bytes %q, want %d bytes", len(c.text), len(got), got, len(c.want))
		}
	}
}

// rooms is the notifier's Store: kinds and members per room; a room in
// broken fails every lookup.
type rooms struct {
	kinds   map[string]store.RoomKind
	members map[string][]string
	broken  map[string]bool
}

func (r rooms) Room(_ context.Context, id string) (store.Room, error) {
	if r.broken[id] {
		return store.Room{}, errors.New("store down")
	}
	k, ok := r.kinds[id]
	if !ok {
		return store.Room{}, store.ErrNotFound
	}
	return store.Room{ID: id, Kind: k}, nil
}

func (r rooms) Member(ctx context.Context, room, user string) (store.Member, error) {
	if _, err := r.Room(ctx, room); err != nil {
		return store.Member{}, err
	}
	if slices.Contains(r.members[room], user) {
		return store.Member{User: user}, nil
	}
	return store.Member{}, store.ErrNotFound
}

func (r rooms) Members(ctx context.Context, room, _ string, limit int) ([]store.Member, error) {
	if _, err := r.Room(ctx, room); err != nil {
		return nil, err
	}
	var out []store.Member
	for _, u := range r.members[room][:min(limit, len(r.members[room]))] {
		out = append(out, store.Member{User: u})
	}
	return out, nil
}

// online is the notifier's Presence: the users with a device online, or
// an error for every lookup.
type online struct {
	users map[string]bool
	err   error
}

func (o online) States(_ context.Context, users []string) (map[string]presence.State, error) {
	if o.err != nil {
		return nil, o.err
	}
	out := make(map[string]presence.State)
	for _, u := range users {
		out[u] = presence.State{Online: o.users[u]}
	}
	return out, nil
}

// The notifier pushes to offline peers of direct rooms and to offline
// members a message mentions, never to the sender, to online users or to
// non-members; a room whose lookups fail costs only its own pushes.
func TestNotifier(t *testing.T) {
	for _, presenceDown := range []bool{false, true} {
		t.Run(fmt.Sprintf("presence down %v", presenceDown), func(t *testing.T) {
			nc, js := bustest.WithStreams(t, 4)
			st := rooms{
				kinds: map[string]store.RoomKind{"dm": store.RoomDirect, "dm2": store.RoomDirect, "grp": store.RoomGroup, "bad": store.RoomDirect},
				members: map[string][]string{
					"dm": {"ann", "bob"}, "dm2": {"ann", "cat"}, "grp": {"ann", "bob", "cat", "dan"}, "bad": {"ann", "bob"},
				},
				broken: map[string]bool{"bad": true},
			}
			pr := online{users: map[string]bool{"cat": true}}
			if presenceDown {
				pr.err = errors.New("presence down")
			}
			got := make(chan *pb.Notification, 16)
			sub, err := nc.Subscribe(bus.Notifications("*"), func(m *nats.Msg) {
				note := new(pb.Notification)
				if err := proto.Unmarshal(m.Data, note); err != nil {
					t.Error(err)
				}
				got <- note
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			ctx, cancel := context.WithCancel(context.Background())
			n := New(js, nc, st, pr, zap.NewNop(), Config{})
			done := make(chan error)
			go func() { done <- n.Run(ctx) }()
			defer func() { cancel(); <-done }()

			send := func(room string, seq uint64, sender, text string, mentions ...string) {
				data, _ := proto.Marshal(&pb.Message{Room: room, Seq: seq, Sender: sender, Kind: pb.MessageKind_MESSAGE_KIND_TEXT,
					Body: &pb.Body{Text: text}, Mentions: mentions})
				if _, err := js.Publish(ctx, bus.MsgSubject(room), data); err != nil {
					t.Fatal(err)
				}
			}
			waitReady(t, n)
			send("bad", 1, "ann", "lost push")                           // lookups fail: skipped, counted
			send("dm", 1, "ann", "hi bob")                               // bob offline: pushed
			send("dm2", 1, "ann", "hi cat")                              // cat online: not pushed (unless presence is down)
			send("grp", 1, "ann", "plain")                               // group, no mention: nothing
			send("grp", 2, "bob", "@dan @zed @bob", "dan", "zed", "bob") // dan pushed; zed no member; bob is the sender

			want := map[string]string{"bob/dm": reasonDirect, "dan/grp": reasonMention}
			if presenceDown {
				want["cat/dm2"] = reasonDirect
			}
			seen := map[string]string{}
			deadline := time.After(20 * time.Second)
			for len(seen) < len(want) {
				select {
				case note := <-got:
					seen[note.User+"/"+note.Room] = note.Reason
				case <-deadline:
					t.Fatalf("notifications %v, want %v", seen, want)
				}
			}
			// Anything unwanted would have come by now: the batch after the
			// failing room is done.
			for n.failed.Load() == 0 {
				time.Sleep(10 * time.Millisecond)
			}
			select {
			case note := <-got:
				seen[note.User+"/"+note.Room] = note.Reason
			case <-time.After(200 * time.Millisecond):
			}
			if !maps.Equal(seen, want) {
				t.Fatalf("notifications %v, want %v", seen, want)
			}
			if f := n.failed.Load(); f != 1 {
				t.Errorf("failed = %d, want 1 (room bad)", f)
			}
		})
	}
}

func waitReady(t *testing.T, n *Notifier) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); n.Ready() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("notifier not ready")
		}
	}
}
