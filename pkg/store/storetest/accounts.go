package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/pkg/store"
)

// testAccounts runs the account and friend tests on one store: each uses
// ids and handles of its own, and sharing the store keeps backends that
// make a store slowly (a keyspace) fast.
func testAccounts(t *testing.T, st store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"Users", testUsers},
		{"HandleRace", testHandleRace},
		{"SearchUsers", testSearchUsers},
		{"Sessions", testSessions},
		{"SessionExpiry", testSessionExpiry},
		{"Relations", testRelations},
		{"RelationsPaging", testRelationsPaging},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, st) })
	}
}

func newUser(id, handle string) store.User {
	return store.User{ID: id, Handle: handle, DisplayName: "User " + handle + " ✓", PasswordHash: "$argon2id$" + id, CreatedAt: now()}
}

func createUser(t *testing.T, st store.AccountStore, id, handle string) store.User {
	t.Helper()
	u := newUser(id, handle)
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%s, %s): %v", id, handle, err)
	}
	return u
}

func sameUser(a, b store.User) bool {
	return a.ID == b.ID && a.Handle == b.Handle && a.DisplayName == b.DisplayName && a.PasswordHash == b.PasswordHash && a.CreatedAt.Equal(b.CreatedAt)
}

func checkUser(t *testing.T, got store.User, err error, want store.User) {
	t.Helper()
	if err != nil || !sameUser(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func testUsers(t *testing.T, st store.Store) {
	ctx := context.Background()
	alice := createUser(t, st, "u-alice", "alice")
	alicex := createUser(t, st, "u-alicex", "alicex") // alice as a prefix
	got, err := st.User(ctx, alice.ID)
	checkUser(t, got, err, alice)
	got, err = st.UserByHandle(ctx, "alice")
	checkUser(t, got, err, alice)
	got, err = st.UserByHandle(ctx, "alicex")
	checkUser(t, got, err, alicex)

	// A taken handle is refused and leaves no trace of the loser.
	if err := st.CreateUser(ctx, newUser("u-mallory", "alice")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateUser of alice: %v, want ErrExists", err)
	}
	got, err = st.UserByHandle(ctx, "alice")
	checkUser(t, got, err, alice)
	if _, err := st.User(ctx, "u-mallory"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("User of a refused create: %v, want ErrNotFound", err)
	}
	for _, h := range []string{"alic", "alicexx", "bob"} {
		if u, err := st.UserByHandle(ctx, h); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UserByHandle(%s) = %+v, %v; want ErrNotFound", h, u, err)
		}
	}

	if err := st.SetPasswordHash(ctx, alice.ID, "$argon2id$new"); err != nil {
		t.Fatal(err)
	}
	alice.PasswordHash = "$argon2id$new"
	got, err = st.UserByHandle(ctx, "alice")
	checkUser(t, got, err, alice)
	got, err = st.User(ctx, alicex.ID)
	checkUser(t, got, err, alicex)
	if err := st.SetPasswordHash(ctx, "u-nobody", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetPasswordHash of a missing user: %v, want ErrNotFound", err)
	}
	if _, err := st.User(ctx, "u-nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetPasswordHash created a user: %v", err)
	}
}

// Registrants racing for one handle: exactly one gets it.
func testHandleRace(t *testing.T, st store.Store) {
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = st.CreateUser(context.Background(), newUser(fmt.Sprintf("u-racer%d", i), "contested"))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("racers %d and %d both got the handle", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrExists):
			t.Fatalf("racer %d: %v, want ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer got the handle")
	}
	got, err := st.UserByHandle(context.Background(), "contested")
	if err != nil || got.ID != fmt.Sprintf("u-racer%d", winner) {
		t.Fatalf("handle held by %+v, %v; want racer %d", got, err, winner)
	}
}

func testSearchUsers(t *testing.T, st store.Store) {
	ctx := context.Background()
	for _, h := range []string{"bobcat", "bob", "bobby", "bob.x", "bo_b", "robert", "bobz", "boc"} {
		createUser(t, st, "u-"+h, h)
	}
	search := func(prefix, after string, limit int) []string {
		t.Helper()
		users, err := st.SearchUsers(ctx, prefix, after, limit)
		if err != nil {
			t.Fatalf("SearchUsers(%q, %q, %d): %v", prefix, after, limit, err)
		}
		var handles []string
		for _, u := range users {
			if u.ID != "u-"+u.Handle || u.DisplayName == "" {
				t.Fatalf("SearchUsers returned %+v", u)
			}
			handles = append(handles, u.Handle)
		}
		return handles
	}
	all := []string{"bob", "bob.x", "bobby", "bobcat", "bobz"}
	if got := search("bob", "", 10); !slices.Equal(got, all) {
		t.Fatalf("search bob = %v, want %v", got, all)
	}
	paged := collect(t, 2, 4, func(after string) []string { return search("bob", after, 2) }, func(h string) string { return h })
	if !slices.Equal(paged, all) {
		t.Fatalf("search bob in pages of 2 = %v", paged)
	}
	if got := search("bob", "bobb", 10); !slices.Equal(got, all[2:]) {
		t.Fatalf("search bob after bobb (no such handle) = %v", got)
	}
	for prefix, want := range map[string][]string{"bobb": {"bobby"}, "bobcat": {"bobcat"}, "bobcats": nil, "zzz": nil, "bo_": {"bo_b"}} {
		if got := search(prefix, "", 10); !slices.Equal(got, want) {
			t.Fatalf("search %s = %v, want %v", prefix, got, want)
		}
	}
	if got := search("bob", "", 0); len(got) != 0 {
		t.Fatalf("limit 0: %v", got)
	}
	if _, err := st.SearchUsers(ctx, "bo", "", 10); err == nil {
		t.Fatal("a prefix shorter than MinSearchPrefix was accepted")
	}
}

func newSession(user, id string, ttl time.Duration) store.Session {
	return store.Session{ID: id, User: user, TokenHash: []byte("hash of " + id), CreatedAt: now(), ExpiresAt: now().Add(ttl)}
}

func sameSession(a, b store.Session) bool {
	return a.ID == b.ID && a.User == b.User && bytes.Equal(a.TokenHash, b.TokenHash) && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func checkSessions(t *testing.T, st store.AccountStore, user string, want ...store.Session) {
	t.Helper()
	got, err := st.Sessions(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b store.Session) int { return cmp.Compare(a.ID, b.ID) })
	if !slices.EqualFunc(got, want, sameSession) {
		t.Fatalf("Sessions(%s) = %+v, want %+v", user, got, want)
	}
}

func checkNoSession(t *testing.T, st store.AccountStore, user, id string) {
	t.Helper()
	if s, err := st.Session(context.Background(), user, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Session(%s, %s) = %+v, %v; want ErrNotFound", user, id, s, err)
	}
}

func testSessions(t *testing.T, st store.Store) {
	ctx := context.Background()
	s1, s2, other := newSession("u-sam", "s1", time.Hour), newSession("u-sam", "s2", time.Hour), newSession("u-samx", "s3", time.Hour)
	for _, s := range []store.Session{s1, s2, other} {
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Session(ctx, "u-sam", "s1")
	if err != nil || !sameSession(got, s1) {
		t.Fatalf("Session = %+v, %v; want %+v", got, err, s1)
	}
	checkNoSession(t, st, "u-samx", "s1")
	checkSessions(t, st, "u-sam", s1, s2)
	checkSessions(t, st, "u-samx", other)
	checkSessions(t, st, "u-nobody")

	// Rotation compares the current hash.
	if err := st.RotateSession(ctx, "u-sam", "s1", s1.TokenHash, []byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := st.RotateSession(ctx, "u-sam", "s1", s1.TokenHash, []byte("third")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rotating with a stale hash: %v, want ErrNotFound", err)
	}
	s1.TokenHash = []byte("second")
	checkSessions(t, st, "u-sam", s1, s2)

	// Revocation is final; revoking again, or what never existed, is not
	// an error.
	if err := st.RevokeSession(ctx, "u-sam", "s1"); err != nil {
		t.Fatal(err)
	}
	checkNoSession(t, st, "u-sam", "s1")
	checkSessions(t, st, "u-sam", s2)
	if err := st.RotateSession(ctx, "u-sam", "s1", s1.TokenHash, []byte("fourth")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rotating a revoked session: %v, want ErrNotFound", err)
	}
	checkNoSession(t, st, "u-sam", "s1")
	for _, id := range []string{"s1", "s-never"} {
		if err := st.RevokeSession(ctx, "u-sam", id); err != nil {
			t.Fatalf("RevokeSession(%s): %v", id, err)
		}
	}
	checkSessions(t, st, "u-samx", other)
}

// An expired session reads as gone.
func testSessionExpiry(t *testing.T, st store.Store) {
	ctx := context.Background()
	short, long := newSession("u-eve", "s-short", 1500*time.Millisecond), newSession("u-eve", "s-long", time.Hour)
	for _, s := range []store.Session{short, long} {
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	checkSessions(t, st, "u-eve", long, short)
	time.Sleep(time.Until(short.ExpiresAt) + 100*time.Millisecond)
	checkNoSession(t, st, "u-eve", "s-short")
	checkSessions(t, st, "u-eve", long)
	if err := st.RotateSession(ctx, "u-eve", "s-short", short.TokenHash, []byte("late")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rotating an expired session: %v, want ErrNotFound", err)
	}
}
