package httpapi

import (
	"net/http"

	"github.com/parley-chat/parley/internal/services/accounts"
	"github.com/parley-chat/parley/pkg/store"
)

// Routes registers every route of the API on rt.
func (a *API) Routes(rt *Router) {
	if a.cfg.DevTokens {
		rt.HandleFunc("POST /api/v1/dev/tokens", a.devToken)
	}
	// Rooms, members and read cursors.
	rt.HandleFunc("POST /api/v1/rooms", a.authed(a.createRoom))
	rt.HandleFunc("GET /api/v1/rooms/{room}", a.authed(a.getRoom))
	rt.HandleFunc("PATCH /api/v1/rooms/{room}", a.authed(a.renameRoom))
	rt.HandleFunc("POST /api/v1/rooms/{room}/join", a.authed(a.joinRoom))
	rt.HandleFunc("GET /api/v1/rooms/{room}/members", a.authed(a.listMembers))
	rt.HandleFunc("POST /api/v1/rooms/{room}/members", a.authed(a.addMembers))
	rt.HandleFunc("DELETE /api/v1/rooms/{room}/members/{user}", a.authed(a.removeMember))
	rt.HandleFunc("PUT /api/v1/rooms/{room}/members/{user}/role", a.authed(a.setRole))
	rt.HandleFunc("POST /api/v1/direct", a.authed(a.directRoom))
	rt.HandleFunc("GET /api/v1/rooms/{room}/reads", a.authed(a.listReads))
	// Accounts, sessions, users, friends and blocks: the accounts service's.
	rt.HandleFunc("POST /api/v1/accounts", anonymous(a, http.StatusCreated, a.acc.Register))
	rt.HandleFunc("GET /api/v1/accounts/me", a.authed(a.me))
	rt.HandleFunc("PUT /api/v1/accounts/me/password", a.withClaims(a.changePassword))
	rt.HandleFunc("POST /api/v1/sessions", anonymous(a, http.StatusOK, a.acc.Login))
	rt.HandleFunc("POST /api/v1/sessions/refresh", anonymous(a, http.StatusOK, a.acc.Refresh))
	rt.HandleFunc("DELETE /api/v1/sessions/current", a.withClaims(a.logout))
	rt.HandleFunc("GET /api/v1/users", a.authed(a.listUsers))
	rt.HandleFunc("GET /api/v1/users/{user}", a.authed(a.user))
	rt.HandleFunc("GET /api/v1/friends", a.authed(a.list("friends", store.ListFriends)))
	rt.HandleFunc("DELETE /api/v1/friends/{user}", a.authed(a.social(accounts.SubjectFriendRemove)))
	rt.HandleFunc("GET /api/v1/friends/requests/incoming", a.authed(a.list("requests", store.ListIncoming)))
	rt.HandleFunc("GET /api/v1/friends/requests/outgoing", a.authed(a.list("requests", store.ListOutgoing)))
	rt.HandleFunc("POST /api/v1/friends/requests", a.authed(a.request))
	rt.HandleFunc("POST /api/v1/friends/requests/{user}/accept", a.authed(a.accept))
	rt.HandleFunc("POST /api/v1/friends/requests/{user}/decline", a.authed(a.social(accounts.SubjectFriendDecline)))
	rt.HandleFunc("DELETE /api/v1/friends/requests/{user}", a.authed(a.social(accounts.SubjectFriendCancel)))
	rt.HandleFunc("GET /api/v1/blocks", a.authed(a.list("blocks", store.ListBlocked)))
	rt.HandleFunc("PUT /api/v1/blocks/{user}", a.authed(a.social(accounts.SubjectBlock)))
	rt.HandleFunc("DELETE /api/v1/blocks/{user}", a.authed(a.social(accounts.SubjectUnblock)))
}
