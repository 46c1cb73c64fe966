package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/pkg/store"
)

func setRelation(t *testing.T, st store.FriendStore, r store.Relation) {
	t.Helper()
	if err := st.SetRelation(context.Background(), r); err != nil {
		t.Fatalf("SetRelation(%+v): %v", r, err)
	}
}

func sameRelation(a, b store.Relation) bool {
	return a.User == b.User && a.Other == b.Other && a.State == b.State &&
		a.Since.Equal(b.Since) && a.BlockedAt.Equal(b.BlockedAt) && a.BlockedByAt.Equal(b.BlockedByAt)
}

// checkRelation fails unless both sides read back as want and its mirror,
// Blocked agrees, and every listing of both users matches.
func checkRelation(t *testing.T, st store.FriendStore, want store.Relation) {
	t.Helper()
	ctx := context.Background()
	for _, side := range []store.Relation{want, want.Mirror()} {
		got, err := st.Relation(ctx, side.User, side.Other)
		if err != nil || !sameRelation(got, side) {
			t.Fatalf("Relation(%s, %s) = %+v, %v; want %+v", side.User, side.Other, got, err, side)
		}
		blocked, err := st.Blocked(ctx, side.User, side.Other)
		if wantBlocked := !side.BlockedAt.IsZero() || !side.BlockedByAt.IsZero(); err != nil || blocked != wantBlocked {
			t.Fatalf("Blocked(%s, %s) = %v, %v; want %v", side.User, side.Other, blocked, err, wantBlocked)
		}
		listed := side.Listings()
		for _, l := range store.RelationLists {
			var wantList []store.Listed
			if since, ok := listed[l]; ok {
				wantList = []store.Listed{{User: side.Other, Since: since}}
			}
			checkListing(t, listing(t, st, side.User, l, "", 10), wantList...)
		}
	}
}

func listing(t *testing.T, st store.FriendStore, user string, l store.RelationList, after string, limit int) []store.Listed {
	t.Helper()
	got, err := st.Relations(context.Background(), user, l, after, limit)
	if err != nil {
		t.Fatalf("Relations(%s, %s, %q, %d): %v", user, l, after, limit, err)
	}
	return got
}

func checkListing(t *testing.T, got []store.Listed, want ...store.Listed) {
	t.Helper()
	same := func(a, b store.Listed) bool { return a.User == b.User && a.Since.Equal(b.Since) }
	if !slices.EqualFunc(got, want, same) {
		t.Fatalf("listing = %+v, want %+v", got, want)
	}
}

// A pair's relation goes through requests, friendship and blocks; both
// sides and all four listings follow every step.
func testRelations(t *testing.T, st store.Store) {
	const a, b = "u-ann", "u-ben"
	checkRelation(t, st, store.Relation{User: a, Other: b})

	asked := now()
	r := store.Relation{User: a, Other: b, State: store.Outgoing, Since: asked}
	setRelation(t, st, r)
	checkRelation(t, st, r)
	// A neighbour with a as an id prefix shares nothing.
	neighbour := store.Relation{User: a + "x", Other: "u-zed", State: store.Friends, Since: asked}
	setRelation(t, st, neighbour)
	checkRelation(t, st, r)

	// Accepted, written from b's side.
	r = store.Relation{User: b, Other: a, State: store.Friends, Since: asked.Add(time.Second)}
	setRelation(t, st, r)
	checkRelation(t, st, r)

	// a blocks b: the friendship ends; then b blocks a too.
	r = store.Relation{User: a, Other: b, BlockedAt: asked.Add(2 * time.Second)}
	setRelation(t, st, r)
	checkRelation(t, st, r)
	r.BlockedByAt = asked.Add(3 * time.Second)
	setRelation(t, st, r)
	checkRelation(t, st, r)

	// Both unblock: as if they never met.
	r = store.Relation{User: b, Other: a}
	setRelation(t, st, r)
	checkRelation(t, st, r)
	checkRelation(t, st, neighbour)
}

// A long listing pages in user id order, without gaps or repeats.
func testRelationsPaging(t *testing.T, st store.Store) {
	const n, page = 230, 100
	at := now()
	var want []store.Listed
	for i := range n {
		friend := fmt.Sprintf("u-f%04d", i)
		setRelation(t, st, store.Relation{User: friend, Other: "u-popular", State: store.Friends, Since: at})
		want = append(want, store.Listed{User: friend, Since: at})
	}
	setRelation(t, st, store.Relation{User: "u-popular", Other: "u-fan", State: store.Incoming, Since: at})
	got := collect(t, page, n/page+2,
		func(after string) []store.Listed { return listing(t, st, "u-popular", store.ListFriends, after, page) },
		func(e store.Listed) string { return e.User })
	checkListing(t, got, want...)
	checkListing(t, listing(t, st, "u-popular", store.ListFriends, "u-f0099", 2), want[100:102]...)
	checkListing(t, listing(t, st, "u-popular", store.ListIncoming, "", 10), store.Listed{User: "u-fan", Since: at})
	checkListing(t, listing(t, st, "u-popular", store.ListOutgoing, "", 10))
	checkListing(t, listing(t, st, "u-popular", store.ListFriends, "", 0))
}
