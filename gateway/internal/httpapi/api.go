// Package httpapi serves a gateway's HTTP API (/api/v1/…): rooms and
// members, read cursors, and accounts, sessions, friends and blocks, which
// it forwards to the accounts service. It keeps no state: room changes go
// to the processor owning the room (Sender) and are answered once stored,
// reads go to the store, account calls to the accounts service over NATS.
//
// Invariants: every route is listed in Routes and documented in
// schemas/openapi.yaml (the gateway's OpenAPI test holds both to each
// other); every failure answers the JSON error body with a documented
// code; rooms that do not exist and rooms the caller is not in answer
// alike, so ids reveal nothing.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/gateway/internal/follow"
	"github.com/parley-chat/parley/gateway/internal/ratelimit"
	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/services/accounts"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Config tunes the API; zero fields take the defaults.
type Config struct {
	DevTokens      bool             // serve POST /api/v1/dev/tokens (never in production)
	RequestTimeout time.Duration    // bus calls of one request (default 10s)
	Limits         ratelimit.Config // per-user buckets
}

// Store is what the API reads and writes in the store.
type Store interface {
	CreateRoom(ctx context.Context, r store.Room, members []store.Member) error
	Room(ctx context.Context, id string) (store.Room, error)
	Member(ctx context.Context, room, user string) (store.Member, error)
	Members(ctx context.Context, room, afterUser string, limit int) ([]store.Member, error)
	RoomReads(ctx context.Context, room, afterUser string, limit int) ([]store.ReadCursor, error)
}

// Users are the gateway's local users (follow.Users): the API takes a
// caller's rate limits from there, and announces new contacts.
type Users interface {
	Acquire(user string) *follow.User
	Release(lu *follow.User)
	AnnounceContacts(a, b string)
}

// Sender hands a room change to the processor owning the room and waits
// for its answer (outbox.Outbox).
type Sender interface {
	Do(ctx context.Context, in *pb.InboundMessage) (*pb.SendResult, error)
}

// Verifier checks an access token: signature, expiry, not revoked.
type Verifier interface {
	Verify(token string) (auth.Claims, error)
}

// Issuer issues development tokens (auth.Signer).
type Issuer interface {
	Issue(user, session string) (string, time.Time, error)
}

// Deps are what the API works with.
type Deps struct {
	Store    Store
	Accounts *accounts.Client
	Users    Users
	Sends    Sender
	Verifier Verifier
	Issuer   Issuer
}

// API serves the HTTP API's routes.
type API struct {
	cfg      Config
	st       Store
	acc      *accounts.Client
	users    Users
	sends    Sender
	verifier Verifier
	issuer   Issuer
	log      *zap.Logger
}

// New makes the API; Routes registers it.
func New(d Deps, log *zap.Logger, cfg Config) *API {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	return &API{cfg: cfg, st: d.Store, acc: d.Accounts, users: d.Users, sends: d.Sends, verifier: d.Verifier, issuer: d.Issuer, log: log}
}

// Fail answers a failed request: the HTTP status of e's code (the one
// table, protocol.Error.HTTPStatus) and {"error": e}.
func (a *API) Fail(w http.ResponseWriter, r *http.Request, e *protocol.Error) {
	status := e.HTTPStatus()
	a.log.Info("api request failed", zap.String("path", r.URL.Path), zap.Int("status", status), zap.String("code", protocol.CodeName(e.Code)), zap.String("message", e.Message))
	writeJSON(w, status, map[string]*protocol.Error{"error": e})
}

// fail answers a failure with code and msg.
func (a *API) fail(w http.ResponseWriter, r *http.Request, code pb.ErrorCode, msg string) {
	a.Fail(w, r, &protocol.Error{Code: code, Message: msg})
}

const maxAPIBody = 1 << 20

// authed requires a valid bearer token and passes its user on.
func (a *API) authed(h func(w http.ResponseWriter, r *http.Request, user string)) http.HandlerFunc {
	return a.withClaims(func(w http.ResponseWriter, r *http.Request, c auth.Claims) { h(w, r, c.User) })
}

// withClaims requires a valid bearer token of a live session and passes
// its claims on.
func (a *API) withClaims(h func(w http.ResponseWriter, r *http.Request, c auth.Claims)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			a.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "missing bearer token")
			return
		}
		claims, err := a.verifier.Verify(token)
		if err != nil {
			a.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "invalid, expired or revoked token")
			return
		}
		lu := a.users.Acquire(claims.User)
		defer a.users.Release(lu)
		if !lu.Limits().AllowRequest(&a.cfg.Limits) {
			a.fail(w, r, pb.ErrorCode_ERROR_CODE_RATE_LIMITED, "too many requests, slow down")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		h(w, r, claims)
	}
}

// queryLimit reads a listing's ?limit=: def when absent, else a number
// from 1 to max; anything else is answered 400.
func (a *API) queryLimit(w http.ResponseWriter, r *http.Request, def, max int) (int, bool) {
	q := r.URL.Query()
	if !q.Has("limit") {
		return def, true
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 1 || n > max {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, fmt.Sprintf("limit: a number from 1 to %d", max))
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
func (a *API) devToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	var req struct {
		User string `json:"user"`
	}
	if err := decodeBody(r, &req); err != nil || !protocol.ValidUserID(req.User) {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "body must be {\"user\": \"<1-64 printable characters>\"}")
		return
	}
	token, exp, err := a.issuer.Issue(req.User, "")
	if err != nil {
		a.fail(w, r, pb.ErrorCode_ERROR_CODE_INTERNAL, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": req.User, "token": token, "expires_at": exp.UTC()})
}
