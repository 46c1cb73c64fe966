package node_test

import (
	"net/http"
	"strings"
	"testing"
)

// The API's edge cases answer its JSON errors: unknown routes 404, wrong
// methods 405 with Allow, page sizes outside the documented range 400,
// and, with accounts, rooms naming users that do not exist 400.
func TestAPIEdgeCases(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Gateway.DevTokens = false // users are accounts
	n := startNode(t, cfg)
	ann, bob := register(t, n, "ann", password), register(t, n, "bob", password)
	token := ann.AccessToken

	t.Run("routes", func(t *testing.T) {
		expectError(t, n, "POST", "/api/v1/nope", token, nil, 404, "NOT_FOUND")
		expectError(t, n, "GET", "/api/v1/nope", token, nil, 404, "NOT_FOUND")
		expectError(t, n, "POST", "/api/v1/dev/tokens", "", map[string]string{"user": "ann"}, 404, "NOT_FOUND") // dev tokens are off
		expectError(t, n, "DELETE", "/api/v1/rooms", token, nil, 405, "METHOD_NOT_ALLOWED")
		expectError(t, n, "POST", "/healthz", "", nil, 405, "METHOD_NOT_ALLOWED")
		req, _ := http.NewRequest("PUT", "http://"+n.HTTPAddr()+"/api/v1/friends", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if allow := resp.Header.Get("Allow"); allow != "GET, HEAD" {
			t.Fatalf("PUT /api/v1/friends: Allow %q, want GET, HEAD", allow)
		}
	})

	t.Run("rooms name existing users only", func(t *testing.T) {
		var room struct{ ID string }
		var e apiError
		members := map[string]any{"name": "pals", "members": []string{bob.User.ID, "ghost", "u00000000000000000000"}}
		if code := api(t, n, "POST", "/api/v1/rooms", token, members, &e); code != 400 || e.Error.Code != "INVALID_ARGUMENT" ||
			!strings.Contains(e.Error.Message, "ghost, u00000000000000000000") || strings.Contains(e.Error.Message, bob.User.ID) {
			t.Fatalf("room with unknown members: HTTP %d %+v, want 400 INVALID_ARGUMENT naming ghost and u00000000000000000000", code, e.Error)
		}
		expectStatus(t, n, "POST", "/api/v1/rooms", token, map[string]any{"name": "pals", "members": []string{bob.User.ID}}, &room, 201)
		expectError(t, n, "POST", "/api/v1/rooms/"+room.ID+"/members", token, map[string]any{"users": []string{"ghost"}}, 400, "INVALID_ARGUMENT")
		expectError(t, n, "POST", "/api/v1/direct", token, map[string]string{"user": "ghost"}, 400, "INVALID_ARGUMENT")
		expectStatus(t, n, "POST", "/api/v1/direct", token, map[string]string{"user": bob.User.ID}, nil, 201)
	})

	t.Run("page sizes", func(t *testing.T) {
		var room struct{ ID string }
		expectStatus(t, n, "POST", "/api/v1/rooms", token, map[string]any{"name": "mine"}, &room, 201)
		for _, path := range []string{"/api/v1/friends", "/api/v1/users?prefix=bob&", "/api/v1/rooms/" + room.ID + "/members", "/api/v1/rooms/" + room.ID + "/reads"} {
			if !strings.HasSuffix(path, "&") {
				path += "?"
			}
			for _, limit := range []string{"0", "-1", "", "x", "1001"} {
				expectError(t, n, "GET", path+"limit="+limit, token, nil, 400, "INVALID_ARGUMENT")
			}
			expectStatus(t, n, "GET", path+"limit=1", token, nil, nil, 200)
		}
		expectError(t, n, "GET", "/api/v1/friends?limit=101", token, nil, 400, "INVALID_ARGUMENT")
		expectStatus(t, n, "GET", "/api/v1/friends?limit=100", token, nil, nil, 200)
		expectStatus(t, n, "GET", "/api/v1/rooms/"+room.ID+"/members?limit=1000", token, nil, nil, 200)
	})
}
