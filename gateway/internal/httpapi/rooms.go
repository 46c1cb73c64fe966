package httpapi

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

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

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
func (a *API) createRoom(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Name    string         `json:"name"`
		Kind    store.RoomKind `json:"kind"`
		Members []string       `json:"members"`
	}
	if err := decodeBody(r, &req); err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "body: "+err.Error())
		return
	}
	if req.Kind == "" {
		req.Kind = store.RoomGroup
	}
	if req.Kind != store.RoomGroup && req.Kind != store.RoomChannel {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "kind must be group or channel (direct rooms: POST /api/v1/direct)")
		return
	}
	if len(req.Name) > maxRoomName || len(req.Members) > maxInitialMembers {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "name: at most 200 bytes; members: at most 1000 (add more later)")
		return
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	members := []store.Member{{User: user, Role: store.RoleOwner, JoinedAt: now}}
	for _, m := range req.Members {
		if !protocol.ValidUserID(m) {
			a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "members: invalid user id "+strconv.Quote(m))
			return
		}
		if m != user {
			members = append(members, store.Member{User: m, Role: store.RoleMember, JoinedAt: now})
		}
	}
	if !a.usersExist(w, r, "members", req.Members) {
		return
	}
	room := store.Room{ID: newRoomID(), Kind: req.Kind, Name: req.Name, CreatedBy: user, CreatedAt: now}
	if err := a.st.CreateRoom(r.Context(), room, members); err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "create room: "+err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, roomJSON{Room: room, Role: store.RoleOwner})
}

// directRoom finds or creates the one-to-one room of the caller and another
// user: POST /api/v1/direct {"user": "..."}.
func (a *API) directRoom(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		User string `json:"user"`
	}
	if err := decodeBody(r, &req); err != nil || !protocol.ValidUserID(req.User) {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, `body must be {"user": "<user id>"}`)
		return
	}
	if req.User == user {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "a direct room needs another user")
		return
	}
	if !a.usersExist(w, r, "user", []string{req.User}) {
		return
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	room := store.Room{ID: directRoomID(user, req.User), Kind: store.RoomDirect, CreatedBy: user, CreatedAt: now}
	err := a.st.CreateRoom(r.Context(), room, []store.Member{
		{User: user, Role: store.RoleMember, JoinedAt: now},
		{User: req.User, Role: store.RoleMember, JoinedAt: now},
	})
	status := http.StatusCreated
	if errors.Is(err, store.ErrExists) {
		status, err = http.StatusOK, nil
		room, err = a.st.Room(r.Context(), room.ID)
	}
	if err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return
	}
	if status == http.StatusCreated {
		a.users.AnnounceContacts(user, req.User)
	}
	writeJSON(w, status, roomJSON{Room: room, Role: store.RoleMember})
}

// usersExist reports whether every id (of the request's field) is a user,
// answering 400 naming those that are not, or 503. Users are the accounts
// service's, except with development tokens, which make any id a user.
func (a *API) usersExist(w http.ResponseWriter, r *http.Request, field string, ids []string) bool {
	if a.cfg.DevTokens || len(ids) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
	defer cancel()
	unknown, err := a.acc.Unknown(ctx, ids)
	switch {
	case err != nil:
		a.accountsFail(w, r, err)
	case len(unknown) > 0:
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, field+": no such users: "+strings.Join(unknown, ", "))
	default:
		return true
	}
	return false
}

// member loads the caller's membership, answering 404 for rooms that do not
// exist and rooms the caller is not in alike, so ids reveal nothing.
func (a *API) member(ctx context.Context, w http.ResponseWriter, r *http.Request, room, user string) (store.Member, bool) {
	m, err := a.st.Member(ctx, room, user)
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND, "room does not exist or you are not a member")
	case err != nil:
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
	default:
		return m, true
	}
	return m, false
}

func (a *API) getRoom(w http.ResponseWriter, r *http.Request, user string) {
	id := r.PathValue("room")
	m, ok := a.member(r.Context(), w, r, id, user)
	if !ok {
		return
	}
	room, err := a.st.Room(r.Context(), id)
	if err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, roomJSON{Room: room, Role: m.Role})
}

// listMembers pages members: ?after=<user>&limit=<1..1000>.
func (a *API) listMembers(w http.ResponseWriter, r *http.Request, user string) {
	roomPage(a, w, r, user, "members", a.st.Members, func(m store.Member) string { return m.User })
}

// listReads pages a room's read cursors, "who has read up to where":
// ?after=<user>&limit=<1..1000>.
func (a *API) listReads(w http.ResponseWriter, r *http.Request, user string) {
	roomPage(a, w, r, user, "reads", a.st.RoomReads, func(c store.ReadCursor) string { return c.User })
}

// roomPage answers a page of a room listing ordered by user to a member
// of the room: {"<key>": [...], "next": "<user>"}, next only when the page
// is full.
func roomPage[T any](a *API, w http.ResponseWriter, r *http.Request, user, key string,
	list func(ctx context.Context, room, afterUser string, limit int) ([]T, error), userOf func(T) string) {
	id := r.PathValue("room")
	if _, ok := a.member(r.Context(), w, r, id, user); !ok {
		return
	}
	limit, ok := a.queryLimit(w, r, defaultRoomPage, maxRoomPage)
	if !ok {
		return
	}
	page, err := list(r.Context(), id, r.URL.Query().Get("after"), limit)
	if err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return
	}
	if page == nil {
		page = []T{} // [] rather than null
	}
	resp := map[string]any{key: page}
	if len(page) == limit {
		resp["next"] = userOf(page[len(page)-1])
	}
	writeJSON(w, http.StatusOK, resp)
}

const maxRoomName = 200

// Room changes are room events sequenced by the processor, which checks the
// caller's rights and applies them; the API only forwards and waits.

// addMembers: POST {"users": [1-1000 ids]} (owners and admins).
func (a *API) addMembers(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Users []string `json:"users"`
	}
	if err := decodeBody(r, &req); err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "body: "+err.Error())
		return
	}
	if !a.usersExist(w, r, "users", req.Users) {
		return
	}
	a.roomChange(w, r, &pb.InboundMessage{Sender: user, Kind: pb.MessageKind_MESSAGE_KIND_MEMBER_JOINED, TargetUsers: req.Users})
}

// joinRoom: the caller joins an open room (a channel).
func (a *API) joinRoom(w http.ResponseWriter, r *http.Request, user string) {
	a.roomChange(w, r, &pb.InboundMessage{Sender: user, Kind: pb.MessageKind_MESSAGE_KIND_MEMBER_JOINED, TargetUsers: []string{user}})
}

// removeMember: the caller leaves (their own id) or removes another member.
func (a *API) removeMember(w http.ResponseWriter, r *http.Request, user string) {
	target := r.PathValue("user")
	kind := pb.MessageKind_MESSAGE_KIND_MEMBER_REMOVED
	if target == user {
		kind = pb.MessageKind_MESSAGE_KIND_MEMBER_LEFT
	}
	a.roomChange(w, r, &pb.InboundMessage{Sender: user, Kind: kind, TargetUsers: []string{target}})
}

// setRole: PUT {"role": "owner|admin|member"} (owners only).
func (a *API) setRole(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Role string `json:"role"`
	}
	if err := decodeBody(r, &req); err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "body: "+err.Error())
		return
	}
	a.roomChange(w, r, &pb.InboundMessage{Sender: user, Kind: pb.MessageKind_MESSAGE_KIND_MEMBER_ROLE_CHANGED,
		TargetUsers: []string{r.PathValue("user")}, Role: req.Role})
}

// renameRoom: PATCH {"name": "..."} (owners and admins).
func (a *API) renameRoom(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeBody(r, &req); err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "body: "+err.Error())
		return
	}
	a.roomChange(w, r, &pb.InboundMessage{Sender: user, Kind: pb.MessageKind_MESSAGE_KIND_ROOM_RENAMED, Body: &pb.Body{Text: req.Name}})
}

// roomChange hands a room change to the processor and answers with the
// event's seq once the processor stored it, or its rejection.
func (a *API) roomChange(w http.ResponseWriter, r *http.Request, in *pb.InboundMessage) {
	in.Room = r.PathValue("room")
	if !protocol.ValidRoomID(in.Room) {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND, "room does not exist or you are not a member")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
	defer cancel()
	res, err := a.sends.Do(ctx, in)
	if err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "room change not confirmed, retry: "+err.Error())
		return
	}
	if e := res.GetError(); e != nil {
		a.Fail(w, r, protocol.FromProto(e))
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"seq": res.Seq})
}

// Page sizes of the room listings (members, reads).
const (
	defaultRoomPage = 100
	maxRoomPage     = 1000
)
