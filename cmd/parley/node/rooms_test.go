package node_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

func send(t *testing.T, c *client.Client, room string, m *pb.SendMessage) (*pb.SendAck, error) {
	t.Helper()
	m.Room = room
	r, err := c.Request(ctxT(t, 20*time.Second), &pb.ClientFrame{Kind: &pb.ClientFrame_Send{Send: m}})
	return r.GetAck(), err
}

// A group of 50 members on 100 connections: messages, edits, deletes and
// reactions reach everyone in one order; rights are enforced; a member who
// leaves or is removed gets that event and nothing after, and is refused.
func TestGroupConversation(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	users := make([]string, 50)
	for i := range users {
		users[i] = fmt.Sprintf("m%02d", i)
	}
	owner := users[0]
	room := createRoom(t, n, owner, users[1:]...)
	conns := make(map[string][]*client.Client)
	for i := 0; i < 100; i++ {
		u := users[i%50]
		c := dial(t, n, u, subprotocols[i%2])
		if _, err := c.Subscribe(ctxT(t, 10*time.Second), room, nil); err != nil {
			t.Fatal(err)
		}
		conns[u] = append(conns[u], c)
	}
	say := func(u string, m *pb.SendMessage) *pb.SendAck {
		t.Helper()
		ack, err := send(t, conns[u][0], room, m)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		return ack
	}
	refused := func(u string, m *pb.SendMessage, code pb.ErrorCode) {
		t.Helper()
		if _, err := send(t, conns[u][0], room, m); errorCode(err) != code {
			t.Fatalf("%s sending %v: %v, want %v", u, m, err, code)
		}
	}
	hello := say(owner, &pb.SendMessage{ClientMsgId: "hello", Body: &pb.Body{Text: "hello all"}})
	mine := say("m01", &pb.SendMessage{ClientMsgId: "mine", Body: &pb.Body{Text: "typo"}, ReplyToSeq: hello.Seq})
	say("m01", &pb.SendMessage{ClientMsgId: "fix", Kind: pb.MessageKind_MESSAGE_KIND_EDIT, RefSeq: mine.Seq, Body: &pb.Body{Text: "fixed"}})
	say("m02", &pb.SendMessage{ClientMsgId: "like", Kind: pb.MessageKind_MESSAGE_KIND_REACTION_ADD, RefSeq: hello.Seq, Reaction: "👍"})
	say("m02", &pb.SendMessage{ClientMsgId: "unlike", Kind: pb.MessageKind_MESSAGE_KIND_REACTION_REMOVE, RefSeq: hello.Seq, Reaction: "👍"})
	refused("m02", &pb.SendMessage{ClientMsgId: "hijack", Kind: pb.MessageKind_MESSAGE_KIND_EDIT, RefSeq: hello.Seq, Body: &pb.Body{Text: "mine now"}}, pb.ErrorCode_ERROR_CODE_FORBIDDEN)
	refused("m02", &pb.SendMessage{ClientMsgId: "vandal", Kind: pb.MessageKind_MESSAGE_KIND_DELETE, RefSeq: hello.Seq}, pb.ErrorCode_ERROR_CODE_FORBIDDEN)
	refused("m02", &pb.SendMessage{ClientMsgId: "ghost", Kind: pb.MessageKind_MESSAGE_KIND_DELETE, RefSeq: 999}, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	refused("m02", &pb.SendMessage{ClientMsgId: "meta", Kind: pb.MessageKind_MESSAGE_KIND_EDIT, RefSeq: 3, Body: &pb.Body{Text: "edit an edit"}}, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	say(owner, &pb.SendMessage{ClientMsgId: "moderate", Kind: pb.MessageKind_MESSAGE_KIND_DELETE, RefSeq: mine.Seq}) // seq 6

	ownerToken := devToken(t, n, owner)
	apiSeq := func(method, path, token string, body any, want int) uint64 {
		t.Helper()
		var r struct{ Seq uint64 }
		if code := api(t, n, method, path, token, body, &r); code != want {
			t.Fatalf("%s %s: HTTP %d, want %d", method, path, code, want)
		}
		return r.Seq
	}
	base := "/api/v1/rooms/" + room
	apiSeq("DELETE", base+"/members/m03", devToken(t, n, "m03"), nil, http.StatusOK)                       // 7: m03 leaves
	apiSeq("DELETE", base+"/members/m04", ownerToken, nil, http.StatusOK)                                  // 8: m04 removed
	apiSeq("PUT", base+"/members/m05/role", ownerToken, map[string]string{"role": "admin"}, http.StatusOK) // 9
	apiSeq("DELETE", base+"/members/m06", devToken(t, n, "m05"), nil, http.StatusOK)                       // 10: the admin removes m06
	apiSeq("DELETE", base+"/members/"+owner, devToken(t, n, "m05"), nil, http.StatusForbidden)
	apiSeq("DELETE", base+"/members/m07", devToken(t, n, "m08"), nil, http.StatusForbidden)
	apiSeq("PATCH", base, ownerToken, map[string]string{"name": "renamed"}, http.StatusOK) // 11
	apiSeq("PATCH", base, devToken(t, n, "m08"), map[string]string{"name": "mine"}, http.StatusForbidden)
	apiSeq("POST", base+"/members", devToken(t, n, "m08"), map[string]any{"users": []string{"intruder"}}, http.StatusForbidden)
	apiSeq("POST", base+"/members", devToken(t, n, "outsider"), map[string]any{"users": []string{"outsider"}}, http.StatusNotFound)
	last := say(owner, &pb.SendMessage{ClientMsgId: "bye", Body: &pb.Body{Text: "after the changes"}}) // 12
	if last.Seq != 12 {
		t.Fatalf("last seq %d, want 12", last.Seq)
	}

	// Everyone still in the room sees 1..12 in the same order; those who
	// left or were removed stop right after their own event.
	stopAt := map[string]uint64{"m03": 7, "m04": 8, "m06": 10}
	var wg sync.WaitGroup
	for u, cs := range conns {
		for _, c := range cs {
			want := uint64(12)
			if s, ok := stopAt[u]; ok {
				want = s
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				msgs := collect(t, c, int(want), 30*time.Second)
				checkDense(t, msgs, 1)
				if msgs[2].Kind != pb.MessageKind_MESSAGE_KIND_EDIT || msgs[2].RefSeq != mine.Seq || msgs[1].ReplyToSeq != hello.Seq {
					t.Errorf("%s: edit or reply lost: %v / %v", u, msgs[2], msgs[1])
				}
				if want < 12 {
					if m := msgs[want-1]; len(m.TargetUsers) != 1 || m.TargetUsers[0] != u {
						t.Errorf("%s: last event %v is not about them", u, m)
					}
					expectQuiet(t, c, 300*time.Millisecond)
				}
			}()
		}
	}
	wg.Wait()
	for u := range stopAt {
		refused(u, &pb.SendMessage{ClientMsgId: "still-here?", Body: &pb.Body{Text: "hi"}}, pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND)
		if _, err := conns[u][1].Subscribe(ctxT(t, 5*time.Second), room, nil); errorCode(err) != pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND {
			t.Fatalf("%s resubscribing: %v", u, err)
		}
	}
	var info struct{ Name string }
	api(t, n, "GET", base, ownerToken, nil, &info)
	if info.Name != "renamed" {
		t.Fatalf("room name %q", info.Name)
	}
}

// Direct rooms: one per pair whichever side asks, and fixed membership.
func TestDirectRooms(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	var a, b struct{ ID, Kind string }
	if code := api(t, n, "POST", "/api/v1/direct", devToken(t, n, "ann"), map[string]string{"user": "ben"}, &a); code != http.StatusCreated {
		t.Fatalf("create: HTTP %d", code)
	}
	if code := api(t, n, "POST", "/api/v1/direct", devToken(t, n, "ben"), map[string]string{"user": "ann"}, &b); code != http.StatusOK || b.ID != a.ID || b.Kind != "direct" {
		t.Fatalf("find: HTTP %d %+v, want the room %s", code, b, a.ID)
	}
	if code := api(t, n, "POST", "/api/v1/direct", devToken(t, n, "ann"), map[string]string{"user": "ann"}, nil); code != http.StatusBadRequest {
		t.Fatalf("direct room with oneself: HTTP %d", code)
	}
	if code := api(t, n, "POST", "/api/v1/rooms/"+a.ID+"/members", devToken(t, n, "ann"), map[string]any{"users": []string{"cat"}}, nil); code != http.StatusForbidden {
		t.Fatalf("adding to a direct room: HTTP %d", code)
	}
	ann := dial(t, n, "ann", subprotocols[0])
	if ack, err := ann.Send(ctxT(t, 10*time.Second), a.ID, "hi", "hi ben"); err != nil || ack.Seq != 1 {
		t.Fatalf("send: %v %v", ack, err)
	}
	cat := dial(t, n, "cat", subprotocols[0])
	if _, err := cat.Send(ctxT(t, 10*time.Second), a.ID, "psst", "hi"); errorCode(err) != pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND {
		t.Fatalf("outsider: %v", err)
	}
}

// A block closes a direct room both ways; unblocking reopens it.
func TestBlockClosesDirectRoom(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	ann, ben := register(t, n, "ann", "correct horse 1"), register(t, n, "ben", "battery staple 2")
	var room struct{ ID string }
	if code := api(t, n, "POST", "/api/v1/direct", ann.AccessToken, map[string]string{"user": ben.User.ID}, &room); code != http.StatusCreated {
		t.Fatalf("direct room: HTTP %d", code)
	}
	annC, benC := dialToken(t, n, ann.AccessToken), dialToken(t, n, ben.AccessToken)
	if code := api(t, n, "PUT", "/api/v1/blocks/"+ann.User.ID, ben.AccessToken, nil, nil); code != http.StatusNoContent {
		t.Fatalf("block: HTTP %d", code)
	}
	for _, c := range []*client.Client{annC, benC} {
		if _, err := c.Send(ctxT(t, 10*time.Second), room.ID, "blocked?", "hello?"); errorCode(err) != pb.ErrorCode_ERROR_CODE_FORBIDDEN {
			t.Fatalf("send in a blocked direct room: %v", err)
		}
	}
	if code := api(t, n, "DELETE", "/api/v1/blocks/"+ann.User.ID, ben.AccessToken, nil, nil); code != http.StatusNoContent {
		t.Fatalf("unblock: HTTP %d", code)
	}
	if ack, err := annC.Send(ctxT(t, 10*time.Second), room.ID, "again", "friends again"); err != nil || ack.Seq != 1 {
		t.Fatalf("send after unblock: %v %v", ack, err)
	}
}

// Sends beyond a user's rate get RATE_LIMITED, and the limit is per user.
func TestRateLimits(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Gateway.Limits.SendRate, cfg.Gateway.Limits.SendBurst = 1, 5
	n := startNode(t, cfg)
	room := createRoom(t, n, "fast", "slow")
	fast1, fast2 := dial(t, n, "fast", subprotocols[0]), dial(t, n, "fast", subprotocols[1])
	limited := 0
	for i := 0; i < 10; i++ {
		c := []*client.Client{fast1, fast2}[i%2]
		if _, err := c.Send(ctxT(t, 10*time.Second), room, fmt.Sprint("f", i), "spam"); errorCode(err) == pb.ErrorCode_ERROR_CODE_RATE_LIMITED {
			limited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if limited < 4 {
		t.Fatalf("%d of 10 rapid sends limited, want at least 4 (burst 5 shared by both connections)", limited)
	}
	slow := dial(t, n, "slow", subprotocols[0])
	if _, err := slow.Send(ctxT(t, 10*time.Second), room, "s", "my turn"); err != nil {
		t.Fatalf("another user is not limited: %v", err)
	}
}

// countingStore counts calls into the real store, to show what a message
// costs however large its room.
type countingStore struct {
	store.Store
	member, addMembers, append atomic.Int64
}

func (c *countingStore) Member(ctx context.Context, room, user string) (store.Member, error) {
	c.member.Add(1)
	return c.Store.Member(ctx, room, user)
}

func (c *countingStore) AddMembers(ctx context.Context, room string, ms []store.Member) error {
	c.addMembers.Add(1)
	return c.Store.AddMembers(ctx, room, ms)
}

func (c *countingStore) AppendMessages(ctx context.Context, msgs []*pb.ArchivedMessage) error {
	c.append.Add(int64(len(msgs)))
	return c.Store.AppendMessages(ctx, msgs)
}

// A room of 100,000 members, built through the API, takes messages at the
// cost of a small room: a membership check and one stored message each,
// nothing per member; its membership pages.
func TestHundredThousandMemberRoom(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	open := cfg.OpenStore
	counted := new(countingStore)
	cfg.OpenStore = func(ctx context.Context) (store.Store, error) {
		st, err := open(ctx)
		counted.Store = st
		return counted, err
	}
	n := startNode(t, cfg)
	room := createRoom(t, n, "host")
	token := devToken(t, n, "host")
	const members, batch = 100_000, 1000
	for first := 1; first < members; first += batch {
		users := make([]string, 0, batch)
		for i := first; i < min(first+batch, members); i++ {
			users = append(users, fmt.Sprintf("fan%06d", i))
		}
		if code := api(t, n, "POST", "/api/v1/rooms/"+room+"/members", token, map[string]any{"users": users}, nil); code != http.StatusOK {
			t.Fatalf("adding members from %d: HTTP %d", first, code)
		}
	}
	events := uint64((members + batch - 2) / batch) // 100 membership events

	fan := dial(t, n, "fan099999", subprotocols[0])
	if _, err := fan.Subscribe(ctxT(t, 10*time.Second), room, nil); err != nil {
		t.Fatal(err)
	}
	host := dial(t, n, "host", subprotocols[0])
	waitArchived(t, n, room, events)
	memberCalls, appended, addCalls := counted.member.Load(), counted.append.Load(), counted.addMembers.Load()
	const sends = 200
	acks := sendN(t, host, room, "big", sends)
	if acks[0].Seq != events+1 {
		t.Fatalf("first message seq %d, want %d", acks[0].Seq, events+1)
	}
	checkDense(t, collect(t, fan, sends, 30*time.Second), events+1)
	waitArchived(t, n, room, events+sends)
	t.Logf("%d messages in a room of %d members: %d stored message writes, %d membership writes, %d membership reads",
		sends, members, counted.append.Load()-appended, counted.addMembers.Load()-addCalls, counted.member.Load()-memberCalls)
	if got := counted.addMembers.Load() - addCalls; got != 0 {
		t.Fatalf("%d membership writes while sending", got)
	}
	if got := counted.member.Load() - memberCalls; got > 2*sends {
		t.Fatalf("%d membership reads for %d messages", got, sends)
	}
	if got := counted.append.Load() - appended; got != sends {
		t.Fatalf("%d stored writes for %d messages, want one each", got, sends)
	}

	// Membership pages.
	var page struct {
		Members []store.Member
		Next    string
	}
	seen, after := 0, ""
	for pages := 0; pages < 200; pages++ {
		page.Members, page.Next = nil, ""
		api(t, n, "GET", "/api/v1/rooms/"+room+"/members?limit=1000&after="+after, token, nil, &page)
		seen += len(page.Members)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if seen != members {
		t.Fatalf("paged %d members, want %d", seen, members)
	}
}
