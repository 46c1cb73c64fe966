package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/pkg/store"
)

// apiError is the body of every failed API call.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (g *Gateway) apiFail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	g.log.Info("api request failed", zap.String("path", r.URL.Path), zap.Int("status", status), zap.String("code", code), zap.String("message", msg))
	var e apiError
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}

// API error codes (see schemas/README.md).
const (
	codeInvalidArgument = "INVALID_ARGUMENT"
	codeUnauthenticated = "UNAUTHENTICATED"
	codeRoomNotFound    = "ROOM_NOT_FOUND"
	codeForbidden       = "FORBIDDEN"
	codeUnavailable     = "UNAVAILABLE"
)

const maxAPIBody = 1 << 20

func (g *Gateway) routeAPI(mux *http.ServeMux) {
	if g.cfg.DevTokens {
		mux.HandleFunc("POST /api/v1/dev/tokens", g.devToken)
	}
	mux.HandleFunc("POST /api/v1/rooms", g.authed(g.createRoom))
	mux.HandleFunc("GET /api/v1/rooms/{room}", g.authed(g.getRoom))
	mux.HandleFunc("GET /api/v1/rooms/{room}/members", g.authed(g.listMembers))
	mux.HandleFunc("POST /api/v1/rooms/{room}/members", g.authed(g.addMembers))
}

// authed requires a valid bearer token and passes its user on.
func (g *Gateway) authed(h func(w http.ResponseWriter, r *http.Request, user string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			g.apiFail(w, r, http.StatusUnauthorized, codeUnauthenticated, "missing bearer token")
			return
		}
		claims, err := g.signer.Verify(token)
		if err != nil {
			g.apiFail(w, r, http.StatusUnauthorized, codeUnauthenticated, "invalid or expired token")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		h(w, r, claims.User)
	}
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// validUserID keeps user ids printable and short; accounts tighten this.
func validUserID(u string) bool {
	if u == "" || len(u) > 64 {
		return false
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// devToken issues a token for any user id. Only for development: it is
// registered only when DevTokens is set.
func (g *Gateway) devToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	var req struct {
		User string `json:"user"`
	}
	if err := decodeBody(r, &req); err != nil || !validUserID(req.User) {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "body must be {\"user\": \"<1-64 printable characters>\"}")
		return
	}
	token, exp, err := g.signer.Issue(req.User, "")
	if err != nil {
		g.apiFail(w, r, http.StatusInternalServerError, codeUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": req.User, "token": token, "expires_at": exp.UTC()})
}

// newRoomID returns a random room id that is a valid subject token.
func newRoomID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "r" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

type roomJSON struct {
	store.Room
	Role store.Role `json:"role,omitempty"`
}

const maxRoomName = 200

// createRoom creates a group or channel; the caller becomes its owner and
// the listed users its members.
func (g *Gateway) createRoom(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Name    string         `json:"name"`
		Kind    store.RoomKind `json:"kind"`
		Members []string       `json:"members"`
	}
	if err := decodeBody(r, &req); err != nil {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "body: "+err.Error())
		return
	}
	if req.Kind == "" {
		req.Kind = store.RoomGroup
	}
	if req.Kind != store.RoomGroup && req.Kind != store.RoomChannel {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "kind must be group or channel")
		return
	}
	if len(req.Name) > maxRoomName {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "name: at most 200 bytes")
		return
	}
	now := time.Now().UTC()
	members := []store.Member{{User: user, Role: store.RoleOwner, JoinedAt: now}}
	for _, m := range req.Members {
		if !validUserID(m) {
			g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "members: invalid user id "+strconv.Quote(m))
			return
		}
		if m != user {
			members = append(members, store.Member{User: m, Role: store.RoleMember, JoinedAt: now})
		}
	}
	room := store.Room{ID: newRoomID(), Kind: req.Kind, Name: req.Name, CreatedBy: user, CreatedAt: now}
	if err := g.rooms.CreateRoom(r.Context(), room, members); err != nil {
		g.apiFail(w, r, http.StatusServiceUnavailable, codeUnavailable, "create room: "+err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, roomJSON{Room: room, Role: store.RoleOwner})
}

// member loads the caller's membership, answering 404 for rooms that do not
// exist and rooms the caller is not in alike, so ids reveal nothing.
func (g *Gateway) member(ctx context.Context, w http.ResponseWriter, r *http.Request, room, user string) (store.Member, bool) {
	m, err := g.rooms.Member(ctx, room, user)
	switch {
	case errors.Is(err, store.ErrNotFound):
		g.apiFail(w, r, http.StatusNotFound, codeRoomNotFound, "room does not exist or you are not a member")
	case err != nil:
		g.apiFail(w, r, http.StatusServiceUnavailable, codeUnavailable, err.Error())
	default:
		return m, true
	}
	return m, false
}

func (g *Gateway) getRoom(w http.ResponseWriter, r *http.Request, user string) {
	id := r.PathValue("room")
	m, ok := g.member(r.Context(), w, r, id, user)
	if !ok {
		return
	}
	room, err := g.rooms.Room(r.Context(), id)
	if err != nil {
		g.apiFail(w, r, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, roomJSON{Room: room, Role: m.Role})
}

// listMembers pages members: ?after=<user>&limit=<1..1000>.
func (g *Gateway) listMembers(w http.ResponseWriter, r *http.Request, user string) {
	id := r.PathValue("room")
	if _, ok := g.member(r.Context(), w, r, id, user); !ok {
		return
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 || limit > 1000 {
		limit = 100
	}
	members, err := g.rooms.Members(r.Context(), id, r.URL.Query().Get("after"), limit)
	if err != nil {
		g.apiFail(w, r, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	resp := map[string]any{"members": members}
	if len(members) == limit {
		resp["next"] = members[len(members)-1].User
	}
	writeJSON(w, http.StatusOK, resp)
}

// addMembers adds users as members; only owners and admins may.
func (g *Gateway) addMembers(w http.ResponseWriter, r *http.Request, user string) {
	id := r.PathValue("room")
	m, ok := g.member(r.Context(), w, r, id, user)
	if !ok {
		return
	}
	if m.Role == store.RoleMember {
		g.apiFail(w, r, http.StatusForbidden, codeForbidden, "only owners and admins add members")
		return
	}
	var req struct {
		Users []string `json:"users"`
	}
	if err := decodeBody(r, &req); err != nil || len(req.Users) == 0 || len(req.Users) > 1000 {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "body must be {\"users\": [1-1000 user ids]}")
		return
	}
	now := time.Now().UTC()
	add := make([]store.Member, 0, len(req.Users))
	for _, u := range req.Users {
		if !validUserID(u) {
			g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "users: invalid user id "+strconv.Quote(u))
			return
		}
		add = append(add, store.Member{User: u, Role: store.RoleMember, JoinedAt: now})
	}
	if err := g.rooms.AddMembers(r.Context(), id, add); err != nil {
		g.apiFail(w, r, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
