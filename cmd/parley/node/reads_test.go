package node_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

func isUnread(room string, read, unread uint64) func(*pb.ServerFrame) bool {
	return func(f *pb.ServerFrame) bool {
		u := f.GetUnread()
		return u != nil && u.Room == room && u.ReadSeq == read && u.Unread == unread
	}
}

// syncRoom finds room in c's Sync answer.
func syncRoom(t *testing.T, c *client.Client, room string) *pb.RoomSummary {
	t.Helper()
	list, err := c.Sync(ctxT(t, 10*time.Second), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list.Rooms {
		if r.Room == room {
			return r
		}
	}
	t.Fatalf("room %s not in sync answer %v", room, list)
	return nil
}

// One user on three devices, two on one gateway and one on another:
// reading on one clears the unread count on the others live; a device that
// was away learns the exact state from Sync and resumes with exactly the
// messages it missed.
func TestReadOnOneDeviceClearsTheOthers(t *testing.T) {
	forEachBackend(t, testReadOnOneDeviceClearsTheOthers)
}

func testReadOnOneDeviceClearsTheOthers(t *testing.T, b backend) {
	n := startNode(t, chatConfig(t, b, t.TempDir()))
	room := createRoom(t, n, "bob", "alice")
	bob := dial(t, n, "bob", subprotocols[0])
	other := startSecondGateway(t, b, n)
	devices := []*client.Client{dial(t, n, "alice", subprotocols[0]), dial(t, n, "alice", subprotocols[1]), dial(t, other, "alice", subprotocols[0])}
	for _, d := range devices {
		if _, err := d.Subscribe(ctxT(t, 10*time.Second), room, nil); err != nil {
			t.Fatal(err)
		}
	}
	sendN(t, bob, room, "first", 5)
	for _, d := range devices {
		checkDense(t, collect(t, d, 5, 10*time.Second), 1)
	}
	if s := syncRoom(t, devices[0], room); s.HeadSeq != 5 || s.ReadSeq != 0 || s.Unread != 5 || s.LastMessage.GetSeq() != 5 || s.Kind != "group" || s.Role != "member" {
		t.Fatalf("summary before reading: %v", s)
	}

	// Device 0 reads up to 3: the others learn 2 remain; device 0, which
	// did it, is not told.
	if err := devices[0].MarkRead(ctxT(t, 5*time.Second), room, 3); err != nil {
		t.Fatal(err)
	}
	for _, d := range devices[1:] {
		expectSignal(t, d, 5*time.Second, "unread 2", isUnread(room, 3, 2))
	}
	noSignal(t, devices[0], 300*time.Millisecond, "own unread event", func(f *pb.ServerFrame) bool { return f.GetUnread() != nil })
	// Device 1 reads everything, and past the head (clamped).
	if err := devices[1].MarkRead(ctxT(t, 5*time.Second), room, 100); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*client.Client{devices[0], devices[2]} {
		expectSignal(t, d, 5*time.Second, "unread 0", isUnread(room, 5, 0))
	}

	// Device 2 goes away having seen 1..5; meanwhile 4 more arrive and
	// device 0 reads up to 7. A stale mark moves nothing and tells no one.
	devices[2].Close()
	sendN(t, bob, room, "second", 4)
	checkDense(t, collect(t, devices[0], 4, 10*time.Second), 6)
	if err := devices[0].MarkRead(ctxT(t, 5*time.Second), room, 7); err != nil {
		t.Fatal(err)
	}
	expectSignal(t, devices[1], 5*time.Second, "unread 2", isUnread(room, 7, 2))
	if err := devices[1].MarkRead(ctxT(t, 5*time.Second), room, 4); err != nil {
		t.Fatal(err)
	}
	noSignal(t, devices[0], 300*time.Millisecond, "unread event of a stale mark", func(f *pb.ServerFrame) bool { return f.GetUnread() != nil })

	back := dial(t, n, "alice", subprotocols[1])
	s := syncRoom(t, back, room)
	if s.HeadSeq != 9 || s.ReadSeq != 7 || s.Unread != 2 || s.LastMessage.GetSeq() != 9 || s.LastMessage.GetBody().GetText() != "second message 3" {
		t.Fatalf("summary after coming back: %v", s)
	}
	last := uint64(5) // what this device had seen
	if _, err := back.Subscribe(ctxT(t, 10*time.Second), room, &last); err != nil {
		t.Fatal(err)
	}
	checkDense(t, collect(t, back, 4, 10*time.Second), 6)
	expectQuiet(t, back, 300*time.Millisecond)
}

// Sync pages the user's rooms in id order; rooms the user never read
// count every message unread; marking needs membership and a seq.
func TestSyncPagesAndChecks(t *testing.T) { forEachBackend(t, testSyncPagesAndChecks) }

func testSyncPagesAndChecks(t *testing.T, b backend) {
	n := startNode(t, chatConfig(t, b, t.TempDir()))
	owner := dial(t, n, "owner", subprotocols[0])
	var rooms []string
	for i := range 5 {
		rooms = append(rooms, createRoom(t, n, "owner", "dana"))
		sendN(t, owner, rooms[i], fmt.Sprint("r", i), i)
	}
	slices.Sort(rooms)
	dana := dial(t, n, "dana", subprotocols[1])
	var got []*pb.RoomSummary
	for after := ""; ; {
		page, err := dana.Sync(ctxT(t, 10*time.Second), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Rooms...)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(got) != len(rooms) {
		t.Fatalf("synced %d rooms, want %d", len(got), len(rooms))
	}
	for i, s := range got {
		if s.Room != rooms[i] || s.Unread != s.HeadSeq || s.ReadSeq != 0 || (s.HeadSeq == 0) != (s.LastMessage == nil) {
			t.Fatalf("room %d: %v", i, s)
		}
	}

	var se *client.ServerError
	for _, bad := range []struct {
		room string
		seq  uint64
		code pb.ErrorCode
	}{
		{rooms[0], 0, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT},
		{"no-such-room", 1, pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND},
		{"bad.room", 1, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT},
	} {
		if err := dana.MarkRead(ctxT(t, 5*time.Second), bad.room, bad.seq); !errors.As(err, &se) || se.Code != bad.code {
			t.Fatalf("MarkRead(%q, %d) = %v, want %s", bad.room, bad.seq, err, bad.code)
		}
	}
	if _, err := dana.Sync(ctxT(t, 5*time.Second), "bad.room", 0); !errors.As(err, &se) || se.Code != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatalf("Sync after an invalid room id: %v", err)
	}
}
