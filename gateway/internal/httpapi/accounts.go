package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/services/accounts"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// ctx bounds one service call.
func (a *API) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
}

// respond writes the service's answer: status and res as JSON (no body for
// 204), or the service's error with its HTTP status.
func respond[T any](a *API, w http.ResponseWriter, r *http.Request, status int, res T, err error) {
	switch {
	case err != nil:
		a.accountsFail(w, r, err)
	case status == http.StatusNoContent:
		w.WriteHeader(status)
	default:
		writeJSON(w, status, res)
	}
}

// accountsFail answers a failed accounts service call: the service's
// error, or UNAVAILABLE when the service did not answer.
func (a *API) accountsFail(w http.ResponseWriter, r *http.Request, err error) {
	var e *protocol.Error
	if errors.As(err, &e) {
		a.Fail(w, r, e)
		return
	}
	a.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "accounts service: "+err.Error())
}

// decode reads a JSON body into v, answering 400 when it cannot.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	if err := decodeBody(r, v); err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "body: "+err.Error())
		return false
	}
	return true
}

// anonymous serves a call made before login (register, log in, refresh):
// decode the body, call the service, answer status with its result.
func anonymous[Req, Res any](a *API, status int, call func(context.Context, Req) (Res, error)) http.HandlerFunc {
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

func (a *API) logout(w http.ResponseWriter, r *http.Request, c auth.Claims) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	err := a.acc.Logout(ctx, accounts.SessionRef{User: c.User, Session: c.SessionID})
	respond(a, w, r, http.StatusNoContent, struct{}{}, err)
}

func (a *API) changePassword(w http.ResponseWriter, r *http.Request, c auth.Claims) {
	var req struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	err := a.acc.ChangePassword(ctx, accounts.PasswordChange{
		SessionRef:      accounts.SessionRef{User: c.User, Session: c.SessionID},
		CurrentPassword: req.CurrentPassword,
		NewPassword:     req.NewPassword,
	})
	respond(a, w, r, http.StatusNoContent, struct{}{}, err)
}

func (a *API) me(w http.ResponseWriter, r *http.Request, user string) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	res, err := a.acc.User(ctx, user)
	respond(a, w, r, http.StatusOK, res, err)
}

func (a *API) user(w http.ResponseWriter, r *http.Request, _ string) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	res, err := a.acc.User(ctx, r.PathValue("user"))
	respond(a, w, r, http.StatusOK, res, err)
}

// listUsers looks up ?handle= exactly, or pages ?prefix= after ?after=.
func (a *API) listUsers(w http.ResponseWriter, r *http.Request, _ string) {
	limit, ok := a.queryLimit(w, r, accounts.DefaultPage, accounts.MaxPage)
	if !ok {
		return
	}
	q := r.URL.Query()
	ctx, cancel := a.ctx(r)
	defer cancel()
	res, err := a.acc.Users(ctx, accounts.UserQuery{Handle: q.Get("handle"), Prefix: q.Get("prefix"), After: q.Get("after"), Limit: limit})
	respond(a, w, r, http.StatusOK, res, err)
}

// list pages listing l as {"<key>": [...], "next": "..."}.
func (a *API) list(key string, l store.RelationList) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, user string) {
		limit, ok := a.queryLimit(w, r, accounts.DefaultPage, accounts.MaxPage)
		if !ok {
			return
		}
		ctx, cancel := a.ctx(r)
		defer cancel()
		page, err := a.acc.List(ctx, accounts.ListQuery{Actor: user, List: l, After: r.URL.Query().Get("after"), Limit: limit})
		res := map[string]any{key: page.Entries}
		if page.Next != "" {
			res["next"] = page.Next
		}
		respond(a, w, r, http.StatusOK, res, err)
	}
}

// request sends a friend request: {"user": "<id>"}.
func (a *API) request(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		User string `json:"user"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	res, err := a.acc.RequestFriend(ctx, accounts.Target{Actor: user, User: req.User})
	respond(a, w, r, http.StatusCreated, res, err)
}

func (a *API) accept(w http.ResponseWriter, r *http.Request, user string) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	res, err := a.acc.AcceptFriend(ctx, accounts.Target{Actor: user, User: r.PathValue("user")})
	if err == nil {
		a.users.AnnounceContacts(user, r.PathValue("user"))
	}
	respond(a, w, r, http.StatusOK, res, err)
}

// social runs an action on the {user} of the path, answering 204.
func (a *API) social(subject string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, user string) {
		ctx, cancel := a.ctx(r)
		defer cancel()
		err := a.acc.Social(ctx, subject, accounts.Target{Actor: user, User: r.PathValue("user")})
		respond(a, w, r, http.StatusNoContent, struct{}{}, err)
	}
}
