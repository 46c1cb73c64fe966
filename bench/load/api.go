package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// API is the part of Parley's HTTP API the bench uses: tokens and rooms.
type API struct {
	Base string // http://host:port
	HTTP *http.Client
}

// NewAPI returns an API client for base keeping up to conns connections
// open, so bursts of setup calls reuse them instead of exhausting ports.
func NewAPI(base string, conns int) *API {
	return &API{Base: base, HTTP: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns},
	}}
}

// Token returns an access token for user. It asks the development token
// endpoint of `parley dev`; when accounts replace dev tokens, this function
// is the one place to change.
func (a *API) Token(ctx context.Context, user string) (string, error) {
	var r struct {
		Token string `json:"token"`
	}
	if err := a.call(ctx, http.MethodPost, "/api/v1/dev/tokens", "", map[string]string{"user": user}, &r); err != nil {
		return "", fmt.Errorf("token for %s: %w", user, err)
	}
	return r.Token, nil
}

// MaxMembersPerCall is the most users one room call may add.
const MaxMembersPerCall = 1000

// CreateRoom creates a group owned by the token's user with the given
// members (at most MaxMembersPerCall) and returns its id.
func (a *API) CreateRoom(ctx context.Context, token, name string, members []string) (string, error) {
	var r struct {
		ID string `json:"id"`
	}
	body := map[string]any{"name": name, "members": members}
	if err := a.call(ctx, http.MethodPost, "/api/v1/rooms", token, body, &r); err != nil {
		return "", fmt.Errorf("create room %q: %w", name, err)
	}
	return r.ID, nil
}

// AddMembers adds users (at most MaxMembersPerCall) to a room the token's
// user owns.
func (a *API) AddMembers(ctx context.Context, token, room string, users []string) error {
	if err := a.call(ctx, http.MethodPost, "/api/v1/rooms/"+room+"/members", token, map[string]any{"users": users}, nil); err != nil {
		return fmt.Errorf("add %d members to %s: %w", len(users), room, err)
	}
	return nil
}

// call sends body as JSON and decodes a successful (2xx) answer into out.
func (a *API) call(ctx context.Context, method, path, token string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
