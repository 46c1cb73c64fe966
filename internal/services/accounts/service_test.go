package accounts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/services/accounts"
	"github.com/parley-chat/parley/internal/store/pebblestore"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// env is a running service on a real NATS server and a Pebble store.
type env struct {
	nc     *nats.Conn
	c      *accounts.Client
	kv     jetstream.KeyValue
	signer *auth.Signer
}

func start(t *testing.T) env {
	t.Helper()
	ctx := context.Background()
	nc := bustest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := accounts.RevocationBucket(ctx, js, time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pebblestore.Open(t.TempDir(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer, err := auth.NewSigner([]byte(strings.Repeat("k", 32)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := accounts.Serve(nc, st, zaptest.NewLogger(t), accounts.Config{
		Signer:  signer,
		Hash:    accounts.HashParams{Memory: 64, Iterations: 1, Threads: 1}, // fast: the costs have their own test
		Revoked: kv,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	return env{nc: nc, c: accounts.NewClient(nc), kv: kv, signer: signer}
}

func (e env) register(t *testing.T, handle string) accounts.Login {
	t.Helper()
	l, err := e.c.Register(context.Background(), accounts.Register{Handle: handle, Password: "correct horse battery"})
	if err != nil {
		t.Fatalf("register %s: %v", handle, err)
	}
	return l
}

// code returns the code of a service error, UNSPECIFIED for nil; it fails on
// transport errors.
func code(t *testing.T, err error) pb.ErrorCode {
	t.Helper()
	var e *protocol.Error
	if err != nil && !errors.As(err, &e) {
		t.Fatalf("not a service error: %v", err)
	}
	if e == nil {
		return pb.ErrorCode_ERROR_CODE_UNSPECIFIED
	}
	return e.Code
}

// listing returns the user ids of one of actor's listings.
func (e env) listing(t *testing.T, actor string, l store.RelationList) []string {
	t.Helper()
	page, err := e.c.List(context.Background(), accounts.ListQuery{Actor: actor, List: l})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, en := range page.Entries {
		ids = append(ids, en.User.ID)
	}
	return ids
}

// Every friend action from every state: the allowed ones move the pair,
// the others answer their code and change nothing.
func TestFriendTransitions(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	a, b := e.register(t, "ann").User.ID, e.register(t, "ben").User.ID
	const ok = pb.ErrorCode_ERROR_CODE_UNSPECIFIED // no error
	act := func(subject, actor, user string, want pb.ErrorCode) {
		t.Helper()
		var err error
		switch subject {
		case accounts.SubjectFriendRequest:
			_, err = e.c.RequestFriend(ctx, accounts.Target{Actor: actor, User: user})
		case accounts.SubjectFriendAccept:
			_, err = e.c.AcceptFriend(ctx, accounts.Target{Actor: actor, User: user})
		default:
			err = e.c.Social(ctx, subject, accounts.Target{Actor: actor, User: user})
		}
		if got := code(t, err); got != want {
			t.Fatalf("%s by %s on %s: %v, want %v", subject, actor, user, got, want)
		}
	}
	state := func(wantA, wantB string) {
		t.Helper()
		for _, side := range []struct{ user, want string }{{a, wantA}, {b, wantB}} {
			var got []string
			for _, l := range store.RelationLists {
				if len(e.listing(t, side.user, l)) > 0 {
					got = append(got, string(l))
				}
			}
			if strings.Join(got, ",") != side.want {
				t.Fatalf("listings of %s: %v, want %s", side.user, got, side.want)
			}
		}
	}

	act(accounts.SubjectFriendRequest, a, b, ok)
	state("outgoing", "incoming")
	act(accounts.SubjectFriendAccept, a, b, pb.ErrorCode_ERROR_CODE_REQUEST_NOT_FOUND) // one's own request
	act(accounts.SubjectFriendCancel, b, a, pb.ErrorCode_ERROR_CODE_REQUEST_NOT_FOUND)
	act(accounts.SubjectFriendDecline, a, b, pb.ErrorCode_ERROR_CODE_REQUEST_NOT_FOUND)
	act(accounts.SubjectFriendRemove, a, b, pb.ErrorCode_ERROR_CODE_NOT_FRIENDS)
	state("outgoing", "incoming")
	act(accounts.SubjectFriendDecline, b, a, ok)
	state("", "")
	act(accounts.SubjectFriendRequest, a, b, ok)
	act(accounts.SubjectFriendCancel, a, b, ok)
	state("", "")
	act(accounts.SubjectFriendRequest, b, a, ok)
	act(accounts.SubjectFriendAccept, a, b, ok)
	state("friends", "friends")
	act(accounts.SubjectFriendRequest, a, b, pb.ErrorCode_ERROR_CODE_ALREADY_FRIENDS)
	act(accounts.SubjectFriendAccept, a, b, pb.ErrorCode_ERROR_CODE_REQUEST_NOT_FOUND)
	act(accounts.SubjectFriendRemove, b, a, ok)
	state("", "")

	// A block ends a pending request and refuses new ones both ways.
	act(accounts.SubjectFriendRequest, a, b, ok)
	act(accounts.SubjectBlock, b, a, ok)
	state("", "blocked")
	act(accounts.SubjectFriendRequest, a, b, pb.ErrorCode_ERROR_CODE_BLOCKED)
	act(accounts.SubjectFriendRequest, b, a, pb.ErrorCode_ERROR_CODE_BLOCKED)
	act(accounts.SubjectBlock, a, b, ok) // both block
	state("blocked", "blocked")
	act(accounts.SubjectUnblock, b, a, ok)
	act(accounts.SubjectFriendRequest, b, a, pb.ErrorCode_ERROR_CODE_BLOCKED) // a's block stands
	act(accounts.SubjectUnblock, a, b, ok)
	act(accounts.SubjectUnblock, a, b, ok) // idempotent
	state("", "")
	act(accounts.SubjectFriendRequest, b, a, ok)
	state("incoming", "outgoing")
}

// Listings and searches page with next until they end.
func TestPaging(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	star := e.register(t, "star").User.ID
	var fans []string
	for i := range 5 {
		fan := e.register(t, fmt.Sprintf("fan%d", i)).User.ID
		if _, err := e.c.RequestFriend(ctx, accounts.Target{Actor: fan, User: star}); err != nil {
			t.Fatal(err)
		}
		fans = append(fans, fan)
	}
	var got []string
	for after, pages := "", 0; ; pages++ {
		page, err := e.c.List(ctx, accounts.ListQuery{Actor: star, List: store.ListIncoming, After: after, Limit: 2})
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %+v, %v", pages, page, err)
		}
		for _, en := range page.Entries {
			got = append(got, en.User.ID)
		}
		if after = page.Next; after == "" {
			break
		}
	}
	if len(got) != len(fans) {
		t.Fatalf("paged %v, want the %d fans %v", got, len(fans), fans)
	}

	var handles []string
	for after := ""; ; {
		page, err := e.c.Users(ctx, accounts.UserQuery{Prefix: "FAN", After: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Users {
			handles = append(handles, u.Handle)
		}
		if after = page.Next; after == "" {
			break
		}
	}
	if strings.Join(handles, ",") != "fan0,fan1,fan2,fan3,fan4" {
		t.Fatalf("search fan = %v", handles)
	}
	for _, q := range []accounts.UserQuery{{}, {Handle: "star", Prefix: "sta"}, {Prefix: "fa"}, {Prefix: "fan", Limit: 101}} {
		if _, err := e.c.Users(ctx, q); code(t, err) != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
			t.Errorf("users %+v: %v, want INVALID_ARGUMENT", q, err)
		}
	}
	if _, err := e.c.List(ctx, accounts.ListQuery{Actor: star, List: "enemies"}); code(t, err) != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Errorf("list enemies: %v, want INVALID_ARGUMENT", err)
	}
}

// Access tokens name the user and session; refresh tokens only work as
// issued; a logout reaches every watcher.
func TestSessions(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	l := e.register(t, "sam")
	claims, err := e.signer.Verify(l.AccessToken)
	if err != nil || claims.User != l.User.ID || claims.SessionID == "" {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	for _, bad := range []string{"", l.RefreshToken + "x", strings.Replace(l.RefreshToken, l.User.ID, "u0000", 1), l.RefreshToken + ".x"} {
		if _, err := e.c.Refresh(ctx, accounts.Refresh{RefreshToken: bad}); code(t, err) != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED {
			t.Errorf("refresh with %q: %v, want UNAUTHENTICATED", bad, err)
		}
	}

	// A session revoked before the watch starts is loaded by it; one
	// revoked later is reported.
	early := e.register(t, "early")
	earlyClaims, _ := e.signer.Verify(early.AccessToken)
	if err := e.c.Logout(ctx, accounts.SessionRef{User: early.User.ID, Session: earlyClaims.SessionID}); err != nil {
		t.Fatal(err)
	}
	revoked := make(chan string, 1)
	r, err := accounts.WatchRevocations(ctx, e.kv, func(s string) { revoked <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	if !r.Revoked(earlyClaims.SessionID) || r.Revoked(claims.SessionID) || r.Revoked("") {
		t.Fatal("the loaded revocations are wrong")
	}
	if err := e.c.Logout(ctx, accounts.SessionRef{User: l.User.ID, Session: claims.SessionID}); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-revoked:
		if s != claims.SessionID || !r.Revoked(s) {
			t.Fatalf("reported %q (revoked: %v), want %q", s, r.Revoked(s), claims.SessionID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("revocation not reported")
	}
	if _, err := e.c.Refresh(ctx, accounts.Refresh{RefreshToken: l.RefreshToken}); code(t, err) != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED {
		t.Fatalf("refresh after logout: %v", err)
	}
	// An entry that ends (expiry markers read as deletes) is dropped.
	if err := e.kv.Delete(ctx, claims.SessionID); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); r.Revoked(claims.SessionID); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an ended revocation is still in the set")
		}
	}
}

// Undecodable requests get INVALID_ARGUMENT; a missing service is a
// transport error.
func TestRequestErrors(t *testing.T) {
	e := start(t)
	msg, err := e.nc.Request(accounts.SubjectLogin, []byte("{"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Error protocol.Error }
	if err := json.Unmarshal(msg.Data, &out); err != nil || out.Error.Code != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT ||
		!strings.Contains(string(msg.Data), `"code":"INVALID_ARGUMENT"`) {
		t.Fatalf("answer %s, %v", msg.Data, err)
	}
	lone := accounts.NewClient(bustest.Connect(t))
	if _, err := lone.User(context.Background(), "u1"); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("no service: %v, want ErrNoResponders", err)
	}
}

// Unknown names, in order, the ids that no account holds.
func TestUnknown(t *testing.T) {
	e := start(t)
	ann, bo := e.register(t, "ann"), e.register(t, "bob")
	ctx := context.Background()
	unknown, err := e.c.Unknown(ctx, []string{"ghost", ann.User.ID, "u00000000000000000000", bo.User.ID})
	if err != nil || strings.Join(unknown, ",") != "ghost,u00000000000000000000" {
		t.Fatalf("Unknown = %v, %v", unknown, err)
	}
	if unknown, err := e.c.Unknown(ctx, []string{ann.User.ID, bo.User.ID}); err != nil || len(unknown) != 0 {
		t.Fatalf("Unknown of accounts = %v, %v", unknown, err)
	}
	if _, err := e.c.Unknown(ctx, make([]string, accounts.MaxUserIDs+1)); code(t, err) != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatalf("over %d ids: %v", accounts.MaxUserIDs, err)
	}
}
