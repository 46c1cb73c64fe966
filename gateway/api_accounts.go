package gateway

import (
	"cmp"
	"context"
	"errors"
	"net/http"

	"github.com/parley-chat/parley/pkg/auth"
	"github.com/parley-chat/parley/pkg/services/accounts"
	"github.com/parley-chat/parley/pkg/store"
)

// accountsAPI serves accounts, sessions, users, friends and blocks by
// calling the accounts service over NATS: the gateway keeps no state.
type accountsAPI struct {
	g *Gateway
	c *accounts.Client
}

func (g *Gateway) routeAccounts(mux *router) {
	a := &accountsAPI{g: g, c: g.accounts}
	mux.HandleFunc("POST /api/v1/accounts", anonymous(a, http.StatusCreated, a.c.Register))
	mux.HandleFunc("GET /api/v1/accounts/me", g.authed(a.me))
	mux.HandleFunc("PUT /api/v1/accounts/me/password", g.withClaims(a.changePassword))
	mux.HandleFunc("POST /api/v1/sessions", anonymous(a, http.StatusOK, a.c.Login))
	mux.HandleFunc("POST /api/v1/sessions/refresh", anonymous(a, http.StatusOK, a.c.Refresh))
	mux.HandleFunc("DELETE /api/v1/sessions/current", g.withClaims(a.logout))
	mux.HandleFunc("GET /api/v1/users", g.authed(a.users))
	mux.HandleFunc("GET /api/v1/users/{user}", g.authed(a.user))
	mux.HandleFunc("GET /api/v1/friends", g.authed(a.list("friends", store.ListFriends)))
	mux.HandleFunc("DELETE /api/v1/friends/{user}", g.authed(a.social(accounts.SubjectFriendRemove)))
	mux.HandleFunc("GET /api/v1/friends/requests/incoming", g.authed(a.list("requests", store.ListIncoming)))
	mux.HandleFunc("GET /api/v1/friends/requests/outgoing", g.authed(a.list("requests", store.ListOutgoing)))
	mux.HandleFunc("POST /api/v1/friends/requests", g.authed(a.request))
	mux.HandleFunc("POST /api/v1/friends/requests/{user}/accept", g.authed(a.accept))
	mux.HandleFunc("POST /api/v1/friends/requests/{user}/decline", g.authed(a.social(accounts.SubjectFriendDecline)))
	mux.HandleFunc("DELETE /api/v1/friends/requests/{user}", g.authed(a.social(accounts.SubjectFriendCancel)))
	mux.HandleFunc("GET /api/v1/blocks", g.authed(a.list("blocks", store.ListBlocked)))
	mux.HandleFunc("PUT /api/v1/blocks/{user}", g.authed(a.social(accounts.SubjectBlock)))
	mux.HandleFunc("DELETE /api/v1/blocks/{user}", g.authed(a.social(accounts.SubjectUnblock)))
}

// accountStatus is the HTTP status of each service error code (a code this
// gateway does not know, from a newer service, answers 502).
var accountStatus = map[string]int{
	accounts.CodeInvalidArgument:    http.StatusBadRequest,
	accounts.CodeWeakPassword:       http.StatusBadRequest,
	accounts.CodeTargetIsSelf:       http.StatusBadRequest,
	accounts.CodeInvalidCredentials: http.StatusUnauthorized,
	accounts.CodeUnauthenticated:    http.StatusUnauthorized,
	accounts.CodeBlocked:            http.StatusForbidden,
	accounts.CodeUserNotFound:       http.StatusNotFound,
	accounts.CodeRequestNotFound:    http.StatusNotFound,
	accounts.CodeNotFriends:         http.StatusNotFound,
	accounts.CodeHandleTaken:        http.StatusConflict,
	accounts.CodeAlreadyFriends:     http.StatusConflict,
	accounts.CodeRequestExists:      http.StatusConflict,
	accounts.CodeUnavailable:        http.StatusServiceUnavailable,
}

// ctx bounds one service call.
func (a *accountsAPI) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), a.g.cfg.RequestTimeout)
}

// respond writes the service's answer: status and res as JSON (no body for
// 204), or the service's error with its HTTP status.
func respond[T any](a *accountsAPI, w http.ResponseWriter, r *http.Request, status int, res T, err error) {
	switch {
	case err != nil:
		a.g.accountsFail(w, r, err)
	case status == http.StatusNoContent:
		w.WriteHeader(status)
	default:
		writeJSON(w, status, res)
	}
}

// accountsFail answers a failed accounts service call: the service's
// error with its HTTP status, or 503 when the service did not answer.
func (g *Gateway) accountsFail(w http.ResponseWriter, r *http.Request, err error) {
	var e *accounts.Error
	if errors.As(err, &e) {
		g.apiFail(w, r, cmp.Or(accountStatus[e.Code], http.StatusBadGateway), e.Code, e.Message)
		return
	}
	g.apiFail(w, r, http.StatusServiceUnavailable, codeUnavailable, "accounts service: "+err.Error())
}

// decode reads a JSON body into v, answering 400 when it cannot.
func (a *accountsAPI) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	if err := decodeBody(r, v); err != nil {
		a.g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, "body: "+err.Error())
		return false
	}
	return true
}

// anonymous serves a call made before login (register, log in, refresh):
// decode the body, call the service, answer status with its result.
func anonymous[Req, Res any](a *accountsAPI, status int, call func(context.Context, Req) (Res, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if !a.decode(w, r, &req) {
			return
		}
		ctx, cancel := a.ctx(r)
		defer cancel()
		res, err := call(ctx, req)
		respond(a, w, r, status, res, err)
	}
}

func (a *accountsAPI) logout(w http.ResponseWriter, r *http.Request, c auth.Claims) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	err := a.c.Logout(ctx, accounts.SessionRef{User: c.User, Session: c.SessionID})
	respond(a, w, r, http.StatusNoContent, struct{}{}, err)
}

func (a *accountsAPI) changePassword(w http.ResponseWriter, r *http.Request, c auth.Claims) {
	var req struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	err := a.c.ChangePassword(ctx, accounts.PasswordChange{
		SessionRef:      accounts.SessionRef{User: c.User, Session: c.SessionID},
		CurrentPassword: req.CurrentPassword,
		NewPassword:     req.NewPassword,
	})
	respond(a, w, r, http.StatusNoContent, struct{}{}, err)
}

func (a *accountsAPI) me(w http.ResponseWriter, r *http.Request, user string) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	res, err := a.c.User(ctx, user)
	respond(a, w, r, http.StatusOK, res, err)
}

func (a *accountsAPI) user(w http.ResponseWriter, r *http.Request, _ string) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	res, err := a.c.User(ctx, r.PathValue("user"))
	respond(a, w, r, http.StatusOK, res, err)
}

// users looks up ?handle= exactly, or pages ?prefix= after ?after=.
func (a *accountsAPI) users(w http.ResponseWriter, r *http.Request, _ string) {
	limit, ok := a.g.queryLimit(w, r, accounts.DefaultPage, accounts.MaxPage)
	if !ok {
		return
	}
	q := r.URL.Query()
	ctx, cancel := a.ctx(r)
	defer cancel()
	res, err := a.c.Users(ctx, accounts.UserQuery{Handle: q.Get("handle"), Prefix: q.Get("prefix"), After: q.Get("after"), Limit: limit})
	respond(a, w, r, http.StatusOK, res, err)
}

// list pages listing l as {"<key>": [...], "next": "..."}.
func (a *accountsAPI) list(key string, l store.RelationList) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, user string) {
		limit, ok := a.g.queryLimit(w, r, accounts.DefaultPage, accounts.MaxPage)
		if !ok {
			return
		}
		ctx, cancel := a.ctx(r)
		defer cancel()
		page, err := a.c.List(ctx, accounts.ListQuery{Actor: user, List: l, After: r.URL.Query().Get("after"), Limit: limit})
		res := map[string]any{key: page.Entries}
		if page.Next != "" {
			res["next"] = page.Next
		}
		respond(a, w, r, http.StatusOK, res, err)
	}
}

// request sends a friend request: {"user": "<id>"}.
func (a *accountsAPI) request(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		User string `json:"user"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	res, err := a.c.RequestFriend(ctx, accounts.Target{Actor: user, User: req.User})
	respond(a, w, r, http.StatusCreated, res, err)
}

func (a *accountsAPI) accept(w http.ResponseWriter, r *http.Request, user string) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	res, err := a.c.AcceptFriend(ctx, accounts.Target{Actor: user, User: r.PathValue("user")})
	if err == nil {
		a.g.announceContacts(user, r.PathValue("user"))
	}
	respond(a, w, r, http.StatusOK, res, err)
}

// social runs an action on the {user} of the path, answering 204.
func (a *accountsAPI) social(subject string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, user string) {
		ctx, cancel := a.ctx(r)
		defer cancel()
		err := a.c.Social(ctx, subject, accounts.Target{Actor: user, User: r.PathValue("user")})
		respond(a, w, r, http.StatusNoContent, struct{}{}, err)
	}
}
