package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/pkg/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

func (g *Gateway) routeRooms(mux *router) {
	mux.HandleFunc("POST /api/v1/rooms", g.authed(g.createRoom))
	mux.HandleFunc("GET /api/v1/rooms/{room}", g.authed(g.getRoom))
	mux.HandleFunc("PATCH /api/v1/rooms/{room}", g.authed(g.renameRoom))
	mux.HandleFunc("POST /api/v1/rooms/{room}/join", g.authed(g.joinRoom))
	mux.HandleFunc("GET /api/v1/rooms/{room}/members", g.authed(g.listMembers))
	mux.HandleFunc("POST /api/v1/rooms/{room}/members", g.authed(g.addMembers))
	mux.HandleFunc("DELETE /api/v1/rooms/{room}/members/{user}", g.authed(g.removeMember))
	mux.HandleFunc("PUT /api/v1/rooms/{room}/members/{user}/role", g.authed(g.setRole))
	mux.HandleFunc("POST /api/v1/direct", g.authed(g.directRoom))
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newRoomID returns a random room id that is a valid subject token.
func newRoomID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "r" + strings.ToLower(idEncoding.EncodeToString(b))
}

// directRoomID is the one room of a pair of users, whatever its order.
func directRoomID(a, b string) string {
	if a > b {
		a, b = b, a
	}
	sum := sha256.Sum256([]byte(a + "\x00" + b))
	return "d" + strings.ToLower(idEncoding.EncodeToString(sum[:20]))
}

type roomJSON struct {
	store.Room
	Role store.Role `json:"role,omitempty"`
}

// maxInitialMembers bounds a create; larger rooms grow through
// POST /members in batches.
const maxInitialMembers = 1000

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
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "kind must be group or channel (direct rooms: POST /api/v1/direct)")
		return
	}
	if len(req.Name) > maxRoomName || len(req.Members) > maxInitialMembers {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "name: at most 200 bytes; members: at most 1000 (add more later)")
		return
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	members := []store.Member{{User: user, Role: store.RoleOwner, JoinedAt: now}}
	for _, m := range req.Members {
		if !bus.ValidUserID(m) {
			g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "members: invalid user id "+strconv.Quote(m))
			return
		}
		if m != user {
			members = append(members, store.Member{User: m, Role: store.RoleMember, JoinedAt: now})
		}
	}
	if !g.usersExist(w, r, "members", req.Members) {
		return
	}
	room := store.Room{ID: newRoomID(), Kind: req.Kind, Name: req.Name, CreatedBy: user, CreatedAt: now}
	if err := g.rooms.CreateRoom(r.Context(), room, members); err != nil {
		g.apiFail(w, r, http.StatusServiceUnavailable, codeUnavailable, "create room: "+err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, roomJSON{Room: room, Role: store.RoleOwner})
}

// directRoom finds or creates the one-to-one room of the caller and another
// user: POST /api/v1/direct {"user": "..."}.
func (g *Gateway) directRoom(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		User string `json:"user"`
	}
	if err := decodeBody(r, &req); err != nil || !bus.ValidUserID(req.User) {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, `body must be {"user": "<user id>"}`)
		return
	}
	if req.User == user {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "a direct room needs another user")
		return
	}
	if !g.usersExist(w, r, "user", []string{req.User}) {
		return
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	room := store.Room{ID: directRoomID(user, req.User), Kind: store.RoomDirect, CreatedBy: user, CreatedAt: now}
	err := g.rooms.CreateRoom(r.Context(), room, []store.Member{
		{User: user, Role: store.RoleMember, JoinedAt: now},
		{User: req.User, Role: store.RoleMember, JoinedAt: now},
	})
	status := http.StatusCreated
	if errors.Is(err, store.ErrExists) {
		status, err = http.StatusOK, nil
		room, err = g.rooms.Room(r.Context(), room.ID)
	}
	if err != nil {
		g.apiFail(w, r, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	if status == http.StatusCreated {
		g.announceContacts(user, req.User)
	}
	writeJSON(w, status, roomJSON{Room: room, Role: store.RoleMember})
}

// usersExist reports whether every id (of the request's field) is a user,
// answering 400 naming those that are not, or 503. Users are the accounts
// service's, except with development tokens, which make any id a user.
func (g *Gateway) usersExist(w http.ResponseWriter, r *http.Request, field string, ids []string) bool {
	if g.cfg.DevTokens || len(ids) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RequestTimeout)
	defer cancel()
	unknown, err := g.accounts.Unknown(ctx, ids)
	switch {
	case err != nil:
		g.accountsFail(w, r, err)
	case len(unknown) > 0:
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, field+": no such users: "+strings.Join(unknown, ", "))
	default:
		return true
	}
	return false
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
	limit, ok := g.queryLimit(w, r, defaultRoomPage, maxRoomPage)
	if !ok {
		return
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

const maxRoomName = 200

// Room changes are room events sequenced by the processor, which checks the
// caller's rights and applies them; the API only forwards and waits.

// addMembers: POST {"users": [1-1000 ids]} (owners and admins).
func (g *Gateway) addMembers(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Users []string `json:"users"`
	}
	if err := decodeBody(r, &req); err != nil {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "body: "+err.Error())
		return
	}
	if !g.usersExist(w, r, "users", req.Users) {
		return
	}
	g.roomChange(w, r, &pb.InboundMessage{Sender: user, Kind: pb.MessageKind_MESSAGE_KIND_MEMBER_JOINED, TargetUsers: req.Users})
}

// joinRoom: the caller joins an open room (a channel).
func (g *Gateway) joinRoom(w http.ResponseWriter, r *http.Request, user string) {
	g.roomChange(w, r, &pb.InboundMessage{Sender: user, Kind: pb.MessageKind_MESSAGE_KIND_MEMBER_JOINED, TargetUsers: []string{user}})
}

// removeMember: the caller leaves (their own id) or removes another member.
func (g *Gateway) removeMember(w http.ResponseWriter, r *http.Request, user string) {
	target := r.PathValue("user")
	kind := pb.MessageKind_MESSAGE_KIND_MEMBER_REMOVED
	if target == user {
		kind = pb.MessageKind_MESSAGE_KIND_MEMBER_LEFT
	}
	g.roomChange(w, r, &pb.InboundMessage{Sender: user, Kind: kind, TargetUsers: []string{target}})
}

// setRole: PUT {"role": "owner|admin|member"} (owners only).
func (g *Gateway) setRole(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Role string `json:"role"`
	}
	if err := decodeBody(r, &req); err != nil {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "body: "+err.Error())
		return
	}
	g.roomChange(w, r, &pb.InboundMessage{Sender: user, Kind: pb.MessageKind_MESSAGE_KIND_MEMBER_ROLE_CHANGED,
		TargetUsers: []string{r.PathValue("user")}, Role: req.Role})
}

// renameRoom: PATCH {"name": "..."} (owners and admins).
func (g *Gateway) renameRoom(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeBody(r, &req); err != nil {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "body: "+err.Error())
		return
	}
	g.roomChange(w, r, &pb.InboundMessage{Sender: user, Kind: pb.MessageKind_MESSAGE_KIND_ROOM_RENAMED, Body: &pb.Body{Text: req.Name}})
}

// roomChange hands a room change to the processor and answers with the
// event's seq once the processor stored it, or its rejection.
func (g *Gateway) roomChange(w http.ResponseWriter, r *http.Request, in *pb.InboundMessage) {
	in.Room = r.PathValue("room")
	if !bus.ValidRoomID(in.Room) {
		g.apiFail(w, r, http.StatusNotFound, codeRoomNotFound, "room does not exist or you are not a member")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RequestTimeout)
	defer cancel()
	res, err := g.sequenceChange(ctx, in)
	if err != nil {
		g.apiFail(w, r, http.StatusServiceUnavailable, codeUnavailable, "room change not confirmed, retry: "+err.Error())
		return
	}
	if e := res.GetError(); e != nil {
		status := map[pb.ErrorCode]int{
			pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND:    http.StatusNotFound,
			pb.ErrorCode_ERROR_CODE_FORBIDDEN:         http.StatusForbidden,
			pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT:  http.StatusBadRequest,
			pb.ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE: http.StatusBadRequest,
		}[e.Code]
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		g.apiFail(w, r, status, strings.TrimPrefix(e.Code.String(), "ERROR_CODE_"), e.Message)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"seq": res.Seq})
}

// sequenceChange hands a room change to the processor owning the room and
// waits for its answer.
func (g *Gateway) sequenceChange(ctx context.Context, in *pb.InboundMessage) (*pb.SendResult, error) {
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	in.ClientMsgId = "api-" + strings.ToLower(idEncoding.EncodeToString(id))
	in.ReceivedAt = time.Now().UnixMilli()
	return g.sends.Do(ctx, in)
}
