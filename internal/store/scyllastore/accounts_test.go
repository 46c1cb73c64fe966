package scyllastore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/store/scyllastore/scyllatest"
	"github.com/parley-chat/parley/pkg/store"
)

// A claim left by a registrant that crashed before confirming keeps the
// handle from others (with a retryable error, not "taken") until it
// expires, and the refused registrant leaves nothing behind.
func TestUnconfirmedClaimBlocksUntilItExpires(t *testing.T) {
	cfg := scyllatest.Keyspace(t)
	st := scyllatest.Open(t, cfg)
	ctx := context.Background()
	sess := scyllatest.Session(t, cfg, cfg.Keyspace)
	defer sess.Close()
	if err := sess.Query(`INSERT INTO handle_claims (handle, user_id, confirmed) VALUES ('ghost', 'u-crashed', false) USING TTL 60`).Exec(); err != nil {
		t.Fatal(err)
	}

	u := store.User{ID: "u-late", Handle: "ghost", CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	err := st.CreateUser(ctx, u)
	if err == nil || errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateUser over an unconfirmed claim: %v, want a retryable error", err)
	}
	if _, err := st.UserByHandle(ctx, "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByHandle: %v, want ErrNotFound", err)
	}
	if _, err := st.User(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused registrant left a user: %v", err)
	}
	var claims int
	if err := sess.Query(`SELECT COUNT(*) FROM handle_claims WHERE handle = 'ghost'`).Scan(&claims); err != nil || claims != 1 {
		t.Fatalf("claims on ghost: %d, %v; want only the crashed one", claims, err)
	}

	// The claim expires (here: is deleted); the handle is free again.
	if err := sess.Query(`DELETE FROM handle_claims WHERE handle = 'ghost' AND user_id = 'u-crashed'`).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got, err := st.UserByHandle(ctx, "ghost"); err != nil || got.ID != u.ID {
		t.Fatalf("UserByHandle = %+v, %v", got, err)
	}
}
