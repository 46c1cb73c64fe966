package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/pkg/store"
)

// now is a timestamp every backend stores exactly.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func member(user string, role store.Role, at time.Time) store.Member {
	return store.Member{User: user, Role: role, JoinedAt: at}
}

func createRoom(t *testing.T, st store.RoomStore, id string, members ...store.Member) store.Room {
	t.Helper()
	r := store.Room{ID: id, Kind: store.RoomGroup, Name: "room " + id, CreatedBy: "owner", CreatedAt: now()}
	if err := st.CreateRoom(context.Background(), r, members); err != nil {
		t.Fatalf("CreateRoom(%s): %v", id, err)
	}
	return r
}

func sameMember(a, b store.Member) bool {
	return a.User == b.User && a.Role == b.Role && a.JoinedAt.Equal(b.JoinedAt)
}

// checkMember fails unless the membership (room, want.User) reads back as want.
func checkMember(t *testing.T, st store.RoomStore, room string, want store.Member) {
	t.Helper()
	got, err := st.Member(context.Background(), room, want.User)
	if err != nil {
		t.Fatalf("Member(%s, %s): %v", room, want.User, err)
	}
	if !sameMember(got, want) {
		t.Fatalf("Member(%s, %s) = %+v, want %+v", room, want.User, got, want)
	}
}

func checkNotMember(t *testing.T, st store.RoomStore, room, user string) {
	t.Helper()
	if m, err := st.Member(context.Background(), room, user); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Member(%s, %s) = %+v, %v; want ErrNotFound", room, user, m, err)
	}
}

func members(t *testing.T, st store.RoomStore, room, after string, limit int) []store.Member {
	t.Helper()
	got, err := st.Members(context.Background(), room, after, limit)
	if err != nil {
		t.Fatalf("Members(%s, %q, %d): %v", room, after, limit, err)
	}
	return got
}

func userRooms(t *testing.T, st store.RoomStore, user, after string, limit int) []string {
	t.Helper()
	got, err := st.UserRooms(context.Background(), user, after, limit)
	if err != nil {
		t.Fatalf("UserRooms(%s, %q, %d): %v", user, after, limit, err)
	}
	return got
}

func testRooms(t *testing.T, st store.Store) {
	ctx := context.Background()
	r := store.Room{ID: "r-meta", Kind: store.RoomChannel, Name: "Announcements ✓", CreatedBy: "alice", CreatedAt: now()}
	if err := st.CreateRoom(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	got, err := st.Room(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != r.ID || got.Kind != r.Kind || got.Name != r.Name || got.CreatedBy != r.CreatedBy || !got.CreatedAt.Equal(r.CreatedAt) {
		t.Fatalf("Room = %+v, want %+v", got, r)
	}

	other := r
	other.Name = "hijacked"
	if err := st.CreateRoom(ctx, other, []store.Member{member("mallory", store.RoleOwner, now())}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateRoom: %v, want ErrExists", err)
	}
	if got, _ := st.Room(ctx, r.ID); got.Name != r.Name {
		t.Fatalf("a failed create changed the room: %+v", got)
	}
	checkNotMember(t, st, r.ID, "mallory")

	for _, id := range []string{"r-missing", "r-met", "r-meta2"} {
		if got, err := st.Room(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Room(%s) = %+v, %v; want ErrNotFound", id, got, err)
		}
	}
	// Kinds round-trip.
	for _, kind := range []store.RoomKind{store.RoomGroup, store.RoomDirect} {
		id := "r-kind-" + string(kind)
		if err := st.CreateRoom(ctx, store.Room{ID: id, Kind: kind, CreatedAt: now()}, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Room(ctx, id); err != nil || got.Kind != kind {
			t.Fatalf("Room(%s) = %+v, %v", id, got, err)
		}
	}
}

func testRenameRoom(t *testing.T, st store.Store) {
	ctx := context.Background()
	r := createRoom(t, st, "renamed", member("alice", store.RoleOwner, now()))
	if err := st.RenameRoom(ctx, r.ID, "new name"); err != nil {
		t.Fatal(err)
	}
	got, err := st.Room(ctx, r.ID)
	if err != nil || got.Name != "new name" || got.Kind != r.Kind || got.CreatedBy != r.CreatedBy {
		t.Fatalf("after rename: %+v, %v", got, err)
	}
	if err := st.RenameRoom(ctx, "no-such-room", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renaming a missing room: %v, want ErrNotFound", err)
	}
	if _, err := st.Room(ctx, "no-such-room"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renaming a missing room created it: %v", err)
	}
}

func testMembers(t *testing.T, st store.Store) {
	ctx := context.Background()
	at := now()
	owner, bob := member("alice", store.RoleOwner, at), member("bob", store.RoleMember, at)
	createRoom(t, st, "r-m", owner, bob)
	createRoom(t, st, "r-m1", member("bob", store.RoleAdmin, at)) // a room id with r-m as prefix
	checkMember(t, st, "r-m", owner)
	checkMember(t, st, "r-m", bob)
	checkNotMember(t, st, "r-m", "carol")
	checkNotMember(t, st, "r-m", "bo")
	checkNotMember(t, st, "r-m1", "alice")

	if err := st.AddMembers(ctx, "r-nowhere", []store.Member{bob}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddMembers to a missing room: %v, want ErrNotFound", err)
	}
	checkNotMember(t, st, "r-nowhere", "bob")
	if got := userRooms(t, st, "bob", "", 10); !slices.Equal(got, []string{"r-m", "r-m1"}) {
		t.Fatalf("rooms of bob = %v", got)
	}

	// Add one, update another's role: still one row each.
	carol := member("carol", store.RoleMember, at.Add(time.Second))
	bob.Role = store.RoleAdmin
	if err := st.AddMembers(ctx, "r-m", []store.Member{carol, bob}); err != nil {
		t.Fatal(err)
	}
	checkMember(t, st, "r-m", carol)
	checkMember(t, st, "r-m", bob)
	checkMembers(t, members(t, st, "r-m", "", 10), owner, bob, carol)
	checkMembers(t, members(t, st, "r-m1", "", 10), member("bob", store.RoleAdmin, at))

	if err := st.RemoveMember(ctx, "r-m", "bob"); err != nil {
		t.Fatal(err)
	}
	checkNotMember(t, st, "r-m", "bob")
	checkMember(t, st, "r-m1", member("bob", store.RoleAdmin, at))
	checkMembers(t, members(t, st, "r-m", "", 10), owner, carol)
	if got := userRooms(t, st, "bob", "", 10); !slices.Equal(got, []string{"r-m1"}) {
		t.Fatalf("rooms of bob after removal = %v", got)
	}
	// Removing a non-member, or from a missing room, is not an error.
	for _, rm := range [][2]string{{"r-m", "bob"}, {"r-m", "zed"}, {"r-nowhere", "bob"}} {
		if err := st.RemoveMember(ctx, rm[0], rm[1]); err != nil {
			t.Fatalf("RemoveMember(%s, %s): %v", rm[0], rm[1], err)
		}
	}
	// Rejoining after removal works.
	if err := st.AddMembers(ctx, "r-m", []store.Member{bob}); err != nil {
		t.Fatal(err)
	}
	checkMember(t, st, "r-m", bob)
}

// collect reads a paged listing to its end: fetch returns the page after a
// cursor ("" for the first), cursor gives an item's cursor. It fails on a
// page over limit, or when the listing does not end within maxPages (a
// cursor that does not advance would loop forever).
func collect[T any](t *testing.T, limit, maxPages int, fetch func(after string) []T, cursor func(T) string) []T {
	t.Helper()
	var all []T
	after := ""
	for range maxPages {
		p := fetch(after)
		if len(p) > limit {
			t.Fatalf("page of %d after %q, limit %d", len(p), after, limit)
		}
		if len(p) == 0 {
			return all
		}
		all = append(all, p...)
		after = cursor(p[len(p)-1])
	}
	t.Fatalf("listing did not end within %d pages", maxPages)
	return nil
}

func checkMembers(t *testing.T, got []store.Member, want ...store.Member) {
	t.Helper()
	if !slices.EqualFunc(got, want, sameMember) {
		t.Fatalf("members = %+v, want %+v", got, want)
	}
}

// A large room pages in user order, without gaps or repeats.
func testMembersPaging(t *testing.T, st store.Store) {
	const n, page = 1050, 100
	at := now()
	all := make([]store.Member, n)
	for i := range all {
		all[i] = member(fmt.Sprintf("u%05d", i), store.RoleMember, at)
	}
	shuffled := slices.Clone(all)
	slices.Reverse(shuffled)
	createRoom(t, st, "r-big", shuffled[:n/2]...)
	if err := st.AddMembers(context.Background(), "r-big", shuffled[n/2:]); err != nil {
		t.Fatal(err)
	}
	createRoom(t, st, "r-big1", member("u00000", store.RoleOwner, at)) // must not leak into r-big

	got := collect(t, page, n/page+2,
		func(after string) []store.Member { return members(t, st, "r-big", after, page) },
		func(m store.Member) string { return m.User })
	checkMembers(t, got, all...)
	checkMembers(t, members(t, st, "r-big", "u00499", 2), all[500:502]...)
	checkMembers(t, members(t, st, "r-big", "u00499x", 1), all[500]) // after a non-member
	checkMembers(t, members(t, st, "r-big", "", 0))
	checkMembers(t, members(t, st, "r-none", "", 10))
}

// A user's rooms page in id order and follow joins and removals.
func testUserRooms(t *testing.T, st store.Store) {
	const n, page = 230, 100
	at := now()
	var want []string
	for i := range n {
		id := fmt.Sprintf("r-%04d", i)
		createRoom(t, st, id, member("dana", store.RoleMember, at), member("dan", store.RoleMember, at))
		want = append(want, id)
	}
	createRoom(t, st, "r-solo", member("danaa", store.RoleOwner, at)) // must not leak into dana

	got := collect(t, page, n/page+2,
		func(after string) []string { return userRooms(t, st, "dana", after, page) },
		func(room string) string { return room })
	if !slices.Equal(got, want) {
		t.Fatalf("rooms of dana: %d, want %d (%v...)", len(got), len(want), got[:min(len(got), 5)])
	}
	if got := userRooms(t, st, "dana", "r-0099", 2); !slices.Equal(got, want[100:102]) {
		t.Fatalf("rooms of dana after r-0099 = %v", got)
	}
	if got := userRooms(t, st, "dana", "", 0); len(got) != 0 {
		t.Fatalf("limit 0: %v", got)
	}
	if got := userRooms(t, st, "nobody", "", 10); len(got) != 0 {
		t.Fatalf("rooms of nobody = %v", got)
	}
	if err := st.RemoveMember(context.Background(), "r-0005", "dana"); err != nil {
		t.Fatal(err)
	}
	if got := userRooms(t, st, "dana", "r-0004", 1); !slices.Equal(got, []string{"r-0006"}) {
		t.Fatalf("after leaving r-0005: %v", got)
	}
	if got := userRooms(t, st, "dan", "r-0004", 1); !slices.Equal(got, []string{"r-0005"}) {
		t.Fatalf("dan's rooms changed with dana's: %v", got)
	}
}
