package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/internal/services/accounts"
	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

const password = "correct horse battery"

// apiError is the body of a failed API call.
type apiError struct {
	Error struct{ Code, Message string }
}

// expectError calls the API and fails unless it answers status and code.
func expectError(t *testing.T, n *node.Node, method, path, token string, body any, status int, code string) {
	t.Helper()
	var e apiError
	if got := api(t, n, method, path, token, body, &e); got != status || e.Error.Code != code {
		t.Fatalf("%s %s: HTTP %d %+v, want %d %s", method, path, got, e.Error, status, code)
	}
}

// expectStatus calls the API, fails unless it answers status, and decodes
// the answer into out.
func expectStatus(t *testing.T, n *node.Node, method, path, token string, body, out any, status int) {
	t.Helper()
	var raw map[string]any
	if out == nil {
		out = &raw
	}
	if got := api(t, n, method, path, token, body, out); got != status {
		t.Fatalf("%s %s: HTTP %d, want %d", method, path, got, status)
	}
}

func register(t *testing.T, n *node.Node, handle, pw string) accounts.Login {
	t.Helper()
	var l accounts.Login
	expectStatus(t, n, "POST", "/api/v1/accounts", "", accounts.Register{Handle: handle, Password: pw, DisplayName: "The " + handle}, &l, 201)
	if l.User.ID == "" || l.AccessToken == "" || l.RefreshToken == "" {
		t.Fatalf("register %s: %+v", handle, l)
	}
	return l
}

func login(t *testing.T, n *node.Node, handle, pw string) accounts.Login {
	t.Helper()
	var l accounts.Login
	expectStatus(t, n, "POST", "/api/v1/sessions", "", accounts.Credentials{Handle: handle, Password: pw}, &l, 200)
	return l
}

// dialToken connects and authenticates with an access token.
func dialToken(t *testing.T, n *node.Node, token string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctxT(t, 10*time.Second), wsURL(n), client.Options{Subprotocol: protocol.SubprotocolJSON, Token: token})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// authFails checks that a WebSocket authentication with token is refused.
func authFails(t *testing.T, n *node.Node, token string) {
	t.Helper()
	_, err := client.Dial(ctxT(t, 10*time.Second), wsURL(n), client.Options{Subprotocol: protocol.SubprotocolProto, Token: token})
	if code := errorCode(err); code != pb.ErrorCode_ERROR_CODE_AUTH_FAILED {
		t.Fatalf("authenticate: %v (%v), want AUTH_FAILED", code, err)
	}
}

// listed returns the user ids of a listing route.
func listed(t *testing.T, n *node.Node, path, key, token string) []string {
	t.Helper()
	var page map[string][]accounts.Entry
	expectStatus(t, n, "GET", path, token, nil, &page, 200)
	var ids []string
	for _, e := range page[key] {
		ids = append(ids, e.User.ID)
	}
	return ids
}

func checkListed(t *testing.T, n *node.Node, path, key, token string, want ...string) {
	t.Helper()
	if got := listed(t, n, path, key, token); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("GET %s = %v, want %v", path, got, want)
	}
}

// befriend has a ask b, and b accept.
func befriend(t *testing.T, n *node.Node, a, b accounts.Login) {
	t.Helper()
	expectStatus(t, n, "POST", "/api/v1/friends/requests", a.AccessToken, map[string]string{"user": b.User.ID}, nil, 201)
	expectStatus(t, n, "POST", "/api/v1/friends/requests/"+a.User.ID+"/accept", b.AccessToken, nil, nil, 200)
}

// Two users register, find each other, become friends and chat one to
// one; a third can neither write, subscribe, resume nor read the room.
func TestAccountsFriendsAndChat(t *testing.T) { forEachBackend(t, testAccountsFriendsAndChat) }

func testAccountsFriendsAndChat(t *testing.T, b backend) {
	n := startNode(t, testConfigOn(t, b, t.TempDir()))
	alice := register(t, n, "Alice", password)
	bob := register(t, n, "bob.builder", password)
	carol := register(t, n, "carol", password)
	if alice.User.Handle != "alice" || alice.User.DisplayName != "The Alice" {
		t.Fatalf("alice = %+v", alice.User)
	}
	// Handles are case-insensitive; a second login is a second session.
	alice = login(t, n, "ALICE", password)

	var found accounts.UserPage
	expectStatus(t, n, "GET", "/api/v1/users?handle=BOB.Builder", alice.AccessToken, nil, &found, 200)
	if len(found.Users) != 1 || found.Users[0].ID != bob.User.ID {
		t.Fatalf("lookup of bob.builder = %+v", found)
	}
	expectStatus(t, n, "GET", "/api/v1/users?prefix=bob", alice.AccessToken, nil, &found, 200)
	if len(found.Users) != 1 || found.Users[0] != bob.User {
		t.Fatalf("search bob = %+v, want %+v", found, bob.User)
	}
	var profile accounts.Profile
	expectStatus(t, n, "GET", "/api/v1/users/"+bob.User.ID, alice.AccessToken, nil, &profile, 200)
	expectStatus(t, n, "GET", "/api/v1/accounts/me", bob.AccessToken, nil, &profile, 200)
	if profile != bob.User {
		t.Fatalf("me = %+v, want %+v", profile, bob.User)
	}

	expectStatus(t, n, "POST", "/api/v1/friends/requests", alice.AccessToken, map[string]string{"user": bob.User.ID}, nil, 201)
	checkListed(t, n, "/api/v1/friends/requests/incoming", "requests", bob.AccessToken, alice.User.ID)
	checkListed(t, n, "/api/v1/friends/requests/outgoing", "requests", alice.AccessToken, bob.User.ID)
	var friend accounts.Entry
	expectStatus(t, n, "POST", "/api/v1/friends/requests/"+alice.User.ID+"/accept", bob.AccessToken, nil, &friend, 200)
	if friend.User != alice.User || friend.Since.IsZero() {
		t.Fatalf("accepted %+v", friend)
	}
	checkListed(t, n, "/api/v1/friends", "friends", alice.AccessToken, bob.User.ID)
	checkListed(t, n, "/api/v1/friends", "friends", bob.AccessToken, alice.User.ID)
	checkListed(t, n, "/api/v1/friends/requests/incoming", "requests", bob.AccessToken)

	var room struct{ ID string }
	expectStatus(t, n, "POST", "/api/v1/direct", alice.AccessToken, map[string]string{"user": bob.User.ID}, &room, 201)
	ac, bc := dialToken(t, n, alice.AccessToken), dialToken(t, n, bob.AccessToken)
	if _, err := bc.Subscribe(ctxT(t, 5*time.Second), room.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Send(ctxT(t, 10*time.Second), room.ID, "hi-1", "hi bob"); err != nil {
		t.Fatal(err)
	}
	if m := collect(t, bc, 1, 10*time.Second)[0]; m.Sender != alice.User.ID || m.Body.GetText() != "hi bob" {
		t.Fatalf("bob got %v", m)
	}

	cc := dialToken(t, n, carol.AccessToken)
	ctx := ctxT(t, 10*time.Second)
	zero := uint64(0)
	_, sendErr := cc.Send(ctx, room.ID, "c-1", "let me in")
	_, subErr := cc.Subscribe(ctx, room.ID, nil)
	_, resumeErr := cc.Subscribe(ctx, room.ID, &zero)
	_, histErr := cc.History(ctx, &pb.HistoryRequest{Room: room.ID})
	for what, err := range map[string]error{"send": sendErr, "subscribe": subErr, "resume": resumeErr, "history": histErr} {
		if code := errorCode(err); code != pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND {
			t.Errorf("carol's %s: %v, want ROOM_NOT_FOUND", what, err)
		}
	}
	expectError(t, n, "GET", "/api/v1/rooms/"+room.ID, carol.AccessToken, nil, 404, "ROOM_NOT_FOUND")
}

// Bad input gets its documented code and changes nothing.
func TestAccountsBadInput(t *testing.T) { forEachBackend(t, testAccountsBadInput) }

func testAccountsBadInput(t *testing.T, b backend) {
	n := startNode(t, testConfigOn(t, b, t.TempDir()))
	dana := register(t, n, "dana", password)
	eli := register(t, n, "eli", password)

	t.Run("registration", func(t *testing.T) {
		expectError(t, n, "POST", "/api/v1/accounts", "", accounts.Register{Handle: "DANA", Password: "another password"}, 409, "HANDLE_TAKEN")
		for _, bad := range []accounts.Register{
			{Handle: "fred", Password: "short"},
			{Handle: "fred", Password: "FRED"},
			{Handle: "fredfred", Password: "FredFred"},
			{Handle: "fred", Password: "zzzzzzzzzzzz"},
			{Handle: "fred", Password: "Password123"},
		} {
			expectError(t, n, "POST", "/api/v1/accounts", "", bad, 400, "WEAK_PASSWORD")
		}
		for _, bad := range []accounts.Register{
			{Handle: "fred", Password: strings.Repeat("abc", 43)}, // 129 bytes
			{Handle: "fr", Password: password},
			{Handle: "fred!", Password: password},
			{Handle: strings.Repeat("f", 33), Password: password},
			{Handle: "fred", Password: password, DisplayName: "bell\a"},
		} {
			expectError(t, n, "POST", "/api/v1/accounts", "", bad, 400, "INVALID_ARGUMENT")
		}
		expectError(t, n, "POST", "/api/v1/accounts", "", map[string]string{"handle": "fred", "pass": password}, 400, "INVALID_ARGUMENT")

		// Nothing changed: dana keeps her password, fred is still free.
		login(t, n, "dana", password)
		expectError(t, n, "POST", "/api/v1/sessions", "", accounts.Credentials{Handle: "dana", Password: "another password"}, 401, "INVALID_CREDENTIALS")
		var found accounts.UserPage
		expectStatus(t, n, "GET", "/api/v1/users?prefix=fre", dana.AccessToken, nil, &found, 200)
		if len(found.Users) != 0 {
			t.Fatalf("refused registrations left users: %+v", found)
		}
		register(t, n, "fred", password)
	})

	t.Run("login", func(t *testing.T) {
		expectError(t, n, "POST", "/api/v1/sessions", "", accounts.Credentials{Handle: "dana", Password: "wrong password"}, 401, "INVALID_CREDENTIALS")
		expectError(t, n, "POST", "/api/v1/sessions", "", accounts.Credentials{Handle: "nobody", Password: password}, 401, "INVALID_CREDENTIALS")
		expectError(t, n, "POST", "/api/v1/sessions/refresh", "", accounts.Refresh{RefreshToken: "not.a.token"}, 401, "UNAUTHENTICATED")
		expectError(t, n, "GET", "/api/v1/accounts/me", "not-a-token", nil, 401, "UNAUTHENTICATED")
		expectError(t, n, "GET", "/api/v1/users?prefix=da", dana.AccessToken, nil, 400, "INVALID_ARGUMENT")
		expectError(t, n, "GET", "/api/v1/users?limit=x&prefix=dan", dana.AccessToken, nil, 400, "INVALID_ARGUMENT")
	})

	t.Run("friends", func(t *testing.T) {
		const nobody = "u00000000000000000000"
		expectError(t, n, "GET", "/api/v1/users/"+nobody, dana.AccessToken, nil, 404, "USER_NOT_FOUND")
		request := func(from accounts.Login, to string, status int, code string) {
			t.Helper()
			expectError(t, n, "POST", "/api/v1/friends/requests", from.AccessToken, map[string]string{"user": to}, status, code)
		}
		request(dana, nobody, 404, "USER_NOT_FOUND")
		request(dana, dana.User.ID, 400, "TARGET_IS_SELF")
		expectStatus(t, n, "POST", "/api/v1/friends/requests", dana.AccessToken, map[string]string{"user": eli.User.ID}, nil, 201)
		request(dana, eli.User.ID, 409, "REQUEST_EXISTS")
		request(eli, dana.User.ID, 409, "REQUEST_EXISTS")
		expectError(t, n, "POST", "/api/v1/friends/requests/"+eli.User.ID+"/accept", dana.AccessToken, nil, 404, "REQUEST_NOT_FOUND")
		expectError(t, n, "POST", "/api/v1/friends/requests/"+nobody+"/decline", dana.AccessToken, nil, 404, "REQUEST_NOT_FOUND")
		expectError(t, n, "DELETE", "/api/v1/friends/requests/"+dana.User.ID, eli.AccessToken, nil, 404, "REQUEST_NOT_FOUND")
		expectError(t, n, "DELETE", "/api/v1/friends/"+eli.User.ID, dana.AccessToken, nil, 404, "NOT_FRIENDS")
		expectError(t, n, "PUT", "/api/v1/blocks/"+dana.User.ID, dana.AccessToken, nil, 400, "TARGET_IS_SELF")
		expectError(t, n, "PUT", "/api/v1/blocks/"+nobody, dana.AccessToken, nil, 404, "USER_NOT_FOUND")
		expectError(t, n, "GET", "/api/v1/friends?limit=1000", dana.AccessToken, nil, 400, "INVALID_ARGUMENT")

		// Still exactly the one pending request; then it can be withdrawn.
		checkListed(t, n, "/api/v1/friends/requests/outgoing", "requests", dana.AccessToken, eli.User.ID)
		checkListed(t, n, "/api/v1/friends/requests/incoming", "requests", eli.AccessToken, dana.User.ID)
		checkListed(t, n, "/api/v1/friends/requests/incoming", "requests", dana.AccessToken)
		checkListed(t, n, "/api/v1/friends", "friends", dana.AccessToken)
		checkListed(t, n, "/api/v1/blocks", "blocks", dana.AccessToken)
		expectStatus(t, n, "DELETE", "/api/v1/friends/requests/"+eli.User.ID, dana.AccessToken, nil, nil, 204)
		checkListed(t, n, "/api/v1/friends/requests/incoming", "requests", eli.AccessToken)
	})
}

// closeReason waits for the server to end c and returns its close code and
// reason.
func closeReason(t *testing.T, c *client.Client) (int, string) {
	t.Helper()
	waitClosed(t, c)
	var ce wsutil.ClosedError
	if !errors.As(c.Err(), &ce) {
		t.Fatalf("connection ended without a close frame: %v", c.Err())
	}
	return int(ce.Code), ce.Reason
}

// Logging out revokes the session's access tokens at once, at the API and
// on WebSockets, open or new, and its refresh token; other sessions live
// on. Changing the password ends every other session.
func TestLogoutRevokes(t *testing.T) { forEachBackend(t, testLogoutRevokes) }

func testLogoutRevokes(t *testing.T, b backend) {
	n := startNode(t, testConfigOn(t, b, t.TempDir()))
	first := register(t, n, "gina", password)
	second := login(t, n, "gina", password)
	live := dialToken(t, n, first.AccessToken)
	other := dialToken(t, n, second.AccessToken)

	expectStatus(t, n, "DELETE", "/api/v1/sessions/current", first.AccessToken, nil, nil, 204)
	if code, reason := closeReason(t, live); code != protocol.ClosePolicy || reason != "session revoked" {
		t.Fatalf("live connection closed with %d %q, want 1008 \"session revoked\"", code, reason)
	}
	expectError(t, n, "GET", "/api/v1/accounts/me", first.AccessToken, nil, 401, "UNAUTHENTICATED")
	authFails(t, n, first.AccessToken)
	expectError(t, n, "POST", "/api/v1/sessions/refresh", "", accounts.Refresh{RefreshToken: first.RefreshToken}, 401, "UNAUTHENTICATED")

	// The other session is untouched.
	expectStatus(t, n, "GET", "/api/v1/accounts/me", second.AccessToken, nil, nil, 200)
	if _, err := other.Request(ctxT(t, 5*time.Second), &pb.ClientFrame{Kind: &pb.ClientFrame_Ping{Ping: &pb.Ping{}}}); err != nil {
		t.Fatalf("the other session's connection: %v", err)
	}

	// A password change keeps the caller's session and ends the others.
	third := login(t, n, "gina", password)
	const newPassword = "a much better one"
	change := func(current, next string) map[string]string {
		return map[string]string{"current_password": current, "new_password": next}
	}
	expectError(t, n, "PUT", "/api/v1/accounts/me/password", second.AccessToken, change("wrong password", newPassword), 401, "INVALID_CREDENTIALS")
	expectError(t, n, "PUT", "/api/v1/accounts/me/password", second.AccessToken, change(password, "gina"), 400, "WEAK_PASSWORD")
	expectStatus(t, n, "GET", "/api/v1/accounts/me", third.AccessToken, nil, nil, 200)
	expectStatus(t, n, "PUT", "/api/v1/accounts/me/password", second.AccessToken, change(password, newPassword), nil, 204)
	expectError(t, n, "GET", "/api/v1/accounts/me", third.AccessToken, nil, 401, "UNAUTHENTICATED")
	expectStatus(t, n, "GET", "/api/v1/accounts/me", second.AccessToken, nil, nil, 200)
	expectError(t, n, "POST", "/api/v1/sessions", "", accounts.Credentials{Handle: "gina", Password: password}, 401, "INVALID_CREDENTIALS")
	login(t, n, "gina", newPassword)

	// Development tokens belong to no session: nothing to log out.
	expectError(t, n, "DELETE", "/api/v1/sessions/current", devToken(t, n, "dev-user"), nil, 400, "INVALID_ARGUMENT")
}

// A refresh token works once: refreshing rotates it.
func TestRefreshRotates(t *testing.T) { forEachBackend(t, testRefreshRotates) }

func testRefreshRotates(t *testing.T, b backend) {
	n := startNode(t, testConfigOn(t, b, t.TempDir()))
	l := register(t, n, "hank", password)
	var next accounts.Login
	expectStatus(t, n, "POST", "/api/v1/sessions/refresh", "", accounts.Refresh{RefreshToken: l.RefreshToken}, &next, 200)
	if next.RefreshToken == l.RefreshToken || next.User != l.User || !next.RefreshExpiresAt.Equal(l.RefreshExpiresAt) {
		t.Fatalf("refreshed %+v from %+v", next, l)
	}
	expectError(t, n, "POST", "/api/v1/sessions/refresh", "", accounts.Refresh{RefreshToken: l.RefreshToken}, 401, "UNAUTHENTICATED")
	var last accounts.Login
	expectStatus(t, n, "POST", "/api/v1/sessions/refresh", "", accounts.Refresh{RefreshToken: next.RefreshToken}, &last, 200)
	expectStatus(t, n, "GET", "/api/v1/accounts/me", last.AccessToken, nil, nil, 200)
	dialToken(t, n, last.AccessToken)
}

// An expired access token is refused; its refresh token still works.
func TestExpiredAccessToken(t *testing.T) { forEachBackend(t, testExpiredAccessToken) }

func testExpiredAccessToken(t *testing.T, b backend) {
	cfg := testConfigOn(t, b, t.TempDir())
	// JWT expiry has 1 s resolution: a token lives between TTL-1s and TTL,
	// and the refreshed one must live through the checks below.
	cfg.TokenTTL = 3 * time.Second
	n := startNode(t, cfg)
	l := register(t, n, "ivy", password)
	time.Sleep(time.Until(l.ExpiresAt) + 100*time.Millisecond)
	expectError(t, n, "GET", "/api/v1/accounts/me", l.AccessToken, nil, 401, "UNAUTHENTICATED")
	authFails(t, n, l.AccessToken)
	var next accounts.Login
	expectStatus(t, n, "POST", "/api/v1/sessions/refresh", "", accounts.Refresh{RefreshToken: l.RefreshToken}, &next, 200)
	expectStatus(t, n, "GET", "/api/v1/accounts/me", next.AccessToken, nil, nil, 200)
}

// A block ends the friendship and refuses friend requests both ways until
// it is lifted.
func TestBlockRefusesRequests(t *testing.T) { forEachBackend(t, testBlockRefusesRequests) }

func testBlockRefusesRequests(t *testing.T, b backend) {
	n := startNode(t, testConfigOn(t, b, t.TempDir()))
	jo, kim := register(t, n, "jo_1", password), register(t, n, "kim", password)
	befriend(t, n, jo, kim)

	block := "/api/v1/blocks/" + kim.User.ID
	expectStatus(t, n, "PUT", block, jo.AccessToken, nil, nil, 204)
	expectStatus(t, n, "PUT", block, jo.AccessToken, nil, nil, 204) // idempotent
	checkListed(t, n, "/api/v1/blocks", "blocks", jo.AccessToken, kim.User.ID)
	checkListed(t, n, "/api/v1/blocks", "blocks", kim.AccessToken)
	checkListed(t, n, "/api/v1/friends", "friends", jo.AccessToken)
	checkListed(t, n, "/api/v1/friends", "friends", kim.AccessToken)
	if blocked, err := n.Store().Blocked(context.Background(), kim.User.ID, jo.User.ID); err != nil || !blocked {
		t.Fatalf("Blocked(kim, jo) = %v, %v", blocked, err)
	}

	expectError(t, n, "POST", "/api/v1/friends/requests", kim.AccessToken, map[string]string{"user": jo.User.ID}, 403, "BLOCKED")
	expectError(t, n, "POST", "/api/v1/friends/requests", jo.AccessToken, map[string]string{"user": kim.User.ID}, 403, "BLOCKED")
	checkListed(t, n, "/api/v1/friends/requests/incoming", "requests", jo.AccessToken)

	expectStatus(t, n, "DELETE", block, jo.AccessToken, nil, nil, 204)
	expectStatus(t, n, "DELETE", block, jo.AccessToken, nil, nil, 204)
	checkListed(t, n, "/api/v1/blocks", "blocks", jo.AccessToken)
	befriend(t, n, kim, jo)
	checkListed(t, n, "/api/v1/friends?limit=1", "friends", jo.AccessToken, kim.User.ID)
}
