package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/parley-chat/parley/pkg/store"
)

// testReads checks the ReadStore contract: cursors start at 0, only move
// up whatever order writes arrive in, and are kept per (user, room).
func testReads(t *testing.T, st store.Store) {
	t.Run("Empty", func(t *testing.T) {
		if seq := readSeq(t, st, "nobody", "r-none"); seq != 0 {
			t.Fatalf("cursor of a user who never read = %d, want 0", seq)
		}
		if got := roomReads(t, st, "r-none", "", 10); len(got) != 0 {
			t.Fatalf("readers of an unread room = %v, want none", got)
		}
	})
	t.Run("Monotonic", func(t *testing.T) {
		for _, step := range []struct{ mark, want uint64 }{{5, 5}, {3, 5}, {5, 5}, {9, 9}, {0, 9}, {1, 9}} {
			if got := markRead(t, st, "u", "r-mono", step.mark); got != step.want {
				t.Fatalf("MarkRead(%d) = %d, want %d", step.mark, got, step.want)
			}
			if got := readSeq(t, st, "u", "r-mono"); got != step.want {
				t.Fatalf("ReadSeq after MarkRead(%d) = %d, want %d", step.mark, got, step.want)
			}
		}
	})
	t.Run("Isolated", func(t *testing.T) {
		markRead(t, st, "a", "r-iso-1", 7)
		markRead(t, st, "b", "r-iso-1", 3)
		markRead(t, st, "a", "r-iso-2", 11)
		markRead(t, st, "a", "r-iso", 2) // a prefix of the other room ids
		for _, c := range []struct {
			user, room string
			want       uint64
		}{{"a", "r-iso-1", 7}, {"b", "r-iso-1", 3}, {"a", "r-iso-2", 11}, {"b", "r-iso-2", 0}, {"a", "r-iso", 2}} {
			if got := readSeq(t, st, c.user, c.room); got != c.want {
				t.Errorf("ReadSeq(%s, %s) = %d, want %d", c.user, c.room, got, c.want)
			}
		}
		want := []store.ReadCursor{{User: "a", Seq: 7}, {User: "b", Seq: 3}}
		if got := roomReads(t, st, "r-iso-1", "", 10); !slices.Equal(got, want) {
			t.Fatalf("RoomReads(r-iso-1) = %v, want %v", got, want)
		}
	})
	t.Run("Paging", func(t *testing.T) {
		var want []store.ReadCursor
		for i := range 7 {
			c := store.ReadCursor{User: fmt.Sprintf("u%02d", i), Seq: uint64(10 + i)}
			markRead(t, st, c.User, "r-page", c.Seq)
			want = append(want, c)
		}
		var got []store.ReadCursor
		for after := ""; ; {
			page := roomReads(t, st, "r-page", after, 3)
			got = append(got, page...)
			if len(page) < 3 {
				break
			}
			after = page[len(page)-1].User
		}
		if !slices.Equal(got, want) {
			t.Fatalf("RoomReads in pages of 3 = %v, want %v", got, want)
		}
		if got := roomReads(t, st, "r-page", "u03", 2); !slices.Equal(got, want[4:6]) {
			t.Fatalf("RoomReads after u03 = %v, want %v", got, want[4:6])
		}
	})
	// Devices of one user racing with different positions leave the
	// highest, as replays in any order would.
	t.Run("Concurrent", func(t *testing.T) {
		seqs := rand.Perm(200)
		var wg sync.WaitGroup
		for _, s := range seqs {
			wg.Go(func() {
				if _, err := st.MarkRead(context.Background(), "racer", "r-race", uint64(s)+1); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := readSeq(t, st, "racer", "r-race"); got != 200 {
			t.Fatalf("cursor after racing marks = %d, want 200", got)
		}
	})
}

func markRead(t *testing.T, st store.ReadStore, user, room string, seq uint64) uint64 {
	t.Helper()
	got, err := st.MarkRead(context.Background(), user, room, seq)
	if err != nil {
		t.Fatalf("MarkRead(%s, %s, %d): %v", user, room, seq, err)
	}
	return got
}

func readSeq(t *testing.T, st store.ReadStore, user, room string) uint64 {
	t.Helper()
	got, err := st.ReadSeq(context.Background(), user, room)
	if err != nil {
		t.Fatalf("ReadSeq(%s, %s): %v", user, room, err)
	}
	return got
}

func roomReads(t *testing.T, st store.ReadStore, room, after string, limit int) []store.ReadCursor {
	t.Helper()
	got, err := st.RoomReads(context.Background(), room, after, limit)
	if err != nil {
		t.Fatalf("RoomReads(%s, %q, %d): %v", room, after, limit, err)
	}
	return got
}
