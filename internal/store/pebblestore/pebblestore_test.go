package pebblestore_test

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/internal/store/pebblestore"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
	"github.com/parley-chat/parley/pkg/store/storetest"
)

func open(t *testing.T, dir string) *pebblestore.Store {
	t.Helper()
	st, err := pebblestore.Open(dir, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st := open(t, t.TempDir())
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Error(err)
			}
		})
		return st
	})
}

// Everything written survives closing and reopening the directory.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := open(t, dir)
	m := &pb.ArchivedMessage{Message: &pb.Message{Room: "r", Seq: 7, Body: &pb.Body{Text: "hi"}}, StreamSeq: 70}
	if err := st.AppendMessages(ctx, []*pb.ArchivedMessage{m}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRoom(ctx, store.Room{ID: "r", Kind: store.RoomGroup}, []store.Member{{User: "u", Role: store.RoleOwner}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = open(t, dir)
	defer st.Close()
	if h, err := st.HistoryHead(ctx, "r"); err != nil || h != 7 {
		t.Fatalf("head after reopen = %d, %v", h, err)
	}
	if got, err := st.Messages(ctx, "r", 7, 7, 1, false); err != nil || len(got) != 1 || got[0].StreamSeq != 70 || got[0].Message.Body.Text != "hi" {
		t.Fatalf("messages after reopen = %v, %v", got, err)
	}
	if rooms, err := st.UserRooms(ctx, "u", "", 10); err != nil || len(rooms) != 1 || rooms[0] != "r" {
		t.Fatalf("rooms of u after reopen = %v, %v", rooms, err)
	}
}

// Ids that would break the key layout are refused, not stored.
func TestInvalidIDs(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	defer st.Close()
	bad := []*pb.ArchivedMessage{
		{Message: &pb.Message{Room: "a\x00b", Seq: 1}},
		{Message: &pb.Message{Room: "", Seq: 1}},
		{Message: &pb.Message{Room: "r", Seq: 0}},
		{},
	}
	for _, m := range bad {
		if err := st.AppendMessages(ctx, []*pb.ArchivedMessage{m}); err == nil {
			t.Errorf("AppendMessages(%v) succeeded", m)
		}
	}
	if err := st.CreateRoom(ctx, store.Room{ID: "r\x00"}, nil); err == nil {
		t.Error("CreateRoom with a NUL in the id succeeded")
	}
	if err := st.CreateRoom(ctx, store.Room{ID: "r"}, []store.Member{{User: "u\x00v"}}); err == nil {
		t.Error("CreateRoom with a NUL in a user id succeeded")
	}
	if _, err := st.Room(ctx, "r"); err == nil {
		t.Error("a refused CreateRoom left its room behind")
	}
}
