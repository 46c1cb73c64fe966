package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/pkg/auth"
	"github.com/parley-chat/parley/pkg/bus"
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
	codeRateLimited     = "RATE_LIMITED"
	// No route serves the path, or not with the request's method.
	codeNotFound         = "NOT_FOUND"
	codeMethodNotAllowed = "METHOD_NOT_ALLOWED"
)

const maxAPIBody = 1 << 20

func (g *Gateway) routeAPI(mux *router) {
	if g.cfg.DevTokens {
		mux.HandleFunc("POST /api/v1/dev/tokens", g.devToken)
	}
	g.routeRooms(mux)
	mux.HandleFunc("GET /api/v1/rooms/{room}/reads", g.authed(g.listReads))
	g.routeAccounts(mux)
}

// authed requires a valid bearer token and passes its user on.
func (g *Gateway) authed(h func(w http.ResponseWriter, r *http.Request, user string)) http.HandlerFunc {
	return g.withClaims(func(w http.ResponseWriter, r *http.Request, c auth.Claims) { h(w, r, c.User) })
}

// withClaims requires a valid bearer token of a live session and passes
// its claims on.
func (g *Gateway) withClaims(h func(w http.ResponseWriter, r *http.Request, c auth.Claims)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			g.apiFail(w, r, http.StatusUnauthorized, codeUnauthenticated, "missing bearer token")
			return
		}
		claims, err := g.verify(token)
		if err != nil {
			g.apiFail(w, r, http.StatusUnauthorized, codeUnauthenticated, "invalid, expired or revoked token")
			return
		}
		lu := g.users.acquire(claims.User)
		defer g.users.release(lu)
		if !lu.limits.allowRequest(&g.cfg.Limits) {
			g.apiFail(w, r, http.StatusTooManyRequests, codeRateLimited, "too many requests, slow down")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		h(w, r, claims)
	}
}

// queryLimit reads a listing's ?limit=: def when absent, else a number
// from 1 to max; anything else is answered 400.
func (g *Gateway) queryLimit(w http.ResponseWriter, r *http.Request, def, max int) (int, bool) {
	q := r.URL.Query()
	if !q.Has("limit") {
		return def, true
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 1 || n > max {
		g.apiFail(w, r, http.StatusBadRequest, codeInvalidArgument, fmt.Sprintf("limit: a number from 1 to %d", max))
		return 0, false
	}
	return n, true
}

// decodeBody reads a request body into v: exactly one JSON value with no
// unknown fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// One JSON value and nothing after it but white space.
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// devToken issues a token for any user id. Only for development: it is
// registered only when DevTokens is set.
func (g *Gateway) devToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	var req struct {
		User string `json:"user"`
	}
	if err := decodeBody(r, &req); err != nil || !bus.ValidUserID(req.User) {
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
