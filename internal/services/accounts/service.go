// Package accounts is Parley's accounts and social graph service: register,
// log in, refresh and revoke login sessions, change passwords, look up
// users, and friends, friend requests and blocks. It runs as the NATS
// micro service "parley-accounts" (Serve); gateways call it with Client.
//
// Access tokens are short-lived JWTs (auth.Signer) naming the user and the
// login session. Refresh tokens are "<user>.<session>.<secret>"; the store
// keeps only a SHA-256 of the secret, which is rotated on every refresh.
// Ending a session (logout, password change) revokes its refresh token in
// the store and its access tokens through the revocation bucket, which
// every gateway mirrors (Revocations).
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/parley-chat/parley/internal/auth"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// Store is what the service keeps its state in.
type Store interface {
	store.AccountStore
	store.FriendStore
}

// Config configures the service.
type Config struct {
	Signer     *auth.Signer       // signs access tokens
	RefreshTTL time.Duration      // how long a login session lasts (default 30 days)
	Hash       HashParams         // argon2id costs of new hashes (default DefaultHashParams)
	Revoked    jetstream.KeyValue // the revocation bucket (RevocationBucket)
}

const (
	// DefaultRefreshTTL is the default lifetime of a login session.
	DefaultRefreshTTL = 30 * 24 * time.Hour
	// concurrency bounds the requests served at once per instance.
	concurrency = 64
	// requestTimeout bounds the store calls of one request.
	requestTimeout = 10 * time.Second
)

type service struct {
	st  Store
	cfg Config
	nc  *nats.Conn
	log *zap.Logger
	// slots bounds requests in flight; hashing bounds argon2id runs to the
	// cores, each holding Hash.Memory.
	slots, hashing chan struct{}
}

// Serve starts the "parley-accounts" micro service. Instances form one
// queue group, so each request is answered once. Stop the returned service
// to stop serving.
func Serve(nc *nats.Conn, st Store, log *zap.Logger, cfg Config) (micro.Service, error) {
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if cfg.Hash == (HashParams{}) {
		cfg.Hash = DefaultHashParams
	}
	s := &service{
		st: st, cfg: cfg, nc: nc, log: log.Named("accounts"),
		slots:   make(chan struct{}, concurrency),
		hashing: make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        "parley-accounts",
		Version:     "1.0.0",
		Description: "Accounts, login sessions, friends and blocks",
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	endpoints := map[string]micro.Handler{
		SubjectRegister:      handle(s, s.register),
		SubjectLogin:         handle(s, s.login),
		SubjectRefresh:       handle(s, s.refresh),
		SubjectLogout:        handle(s, s.logout),
		SubjectPassword:      handle(s, s.changePassword),
		SubjectUser:          handle(s, s.user),
		SubjectUsers:         handle(s, s.users),
		SubjectUnknown:       handle(s, s.unknown),
		SubjectFriendRequest: handle(s, s.request),
		SubjectFriendAccept:  handle(s, s.accept),
		SubjectFriendDecline: handle(s, s.decline),
		SubjectFriendCancel:  handle(s, s.cancel),
		SubjectFriendRemove:  handle(s, s.remove),
		SubjectBlock:         handle(s, s.block),
		SubjectUnblock:       handle(s, s.unblock),
		SubjectList:          handle(s, s.list),
	}
	for subject, h := range endpoints {
		name := strings.ReplaceAll(strings.TrimPrefix(subject, "parley."), ".", "-")
		if err := svc.AddEndpoint(name, h, micro.WithEndpointSubject(subject)); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("accounts: endpoint %s: %w", subject, err)
		}
	}
	return svc, nil
}

// handle adapts f to a micro endpoint: it decodes the JSON request, runs f
// on a goroutine of its own (argon2id and store round trips must not hold
// up the subscription), and publishes the reply envelope. Errors that are
// not a *protocol.Error are logged and answered as UNAVAILABLE.
func handle[Req, Resp any](s *service, f func(context.Context, Req) (Resp, error)) micro.Handler {
	return micro.HandlerFunc(func(r micro.Request) {
		s.slots <- struct{}{} // blocks delivery while every slot is busy
		data, subject, replyTo := r.Data(), r.Subject(), r.Reply()
		go func() {
			defer func() { <-s.slots }()
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			var out reply[Resp]
			var req Req
			var err error
			if jerr := json.Unmarshal(data, &req); jerr != nil {
				err = protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "request: %v", jerr)
			} else {
				out.Result, err = f(ctx, req)
			}
			if err != nil && !errors.As(err, &out.Error) {
				s.log.Warn("request failed", zap.String("subject", subject), zap.Error(err))
				out.Error = protocol.Reject(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "accounts unavailable, retry")
			}
			b, err := json.Marshal(out)
			if err == nil {
				// Publish, not r.Respond: the service reads the request's
				// state once the handler returns.
				err = s.nc.Publish(replyTo, b)
			}
			if err != nil {
				s.log.Warn("responding", zap.String("subject", subject), zap.Error(err))
			}
		}()
	})
}

// now is a timestamp every store keeps exactly.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns prefix and 20 random base32 characters (96 bits): a valid
// NATS subject token and KV key.
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + strings.ToLower(idEncoding.EncodeToString(b))
}

// Handle rules: 3–32 characters of [a-z0-9_.], compared lower-case.
const (
	minHandle = 3
	maxHandle = 32
	// maxDisplayName is in characters.
	maxDisplayName = 64
)

// normalizeHandle lower-cases handle and checks it.
func normalizeHandle(handle string) (string, *protocol.Error) {
	h := strings.ToLower(handle)
	if len(h) < minHandle || len(h) > maxHandle || !handleChars(h) {
		return "", protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "handle: %d-%d characters of a-z, 0-9, _ and .", minHandle, maxHandle)
	}
	return h, nil
}

func handleChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func checkDisplayName(name string) *protocol.Error {
	if utf8.RuneCountInString(name) > maxDisplayName || strings.ContainsFunc(name, unicode.IsControl) {
		return protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "display_name: at most %d printable characters", maxDisplayName)
	}
	return nil
}

// pageLimit checks a page size; 0 means DefaultPage.
func pageLimit(limit int) (int, *protocol.Error) {
	switch {
	case limit == 0:
		return DefaultPage, nil
	case limit < 0 || limit > MaxPage:
		return 0, protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "limit: 1-%d", MaxPage)
	}
	return limit, nil
}

// withHashing runs f holding a hashing slot.
func (s *service) withHashing(ctx context.Context, f func()) error {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.hashing }()
	f()
	return nil
}

// passwordMatches checks password against u's stored hash.
func (s *service) passwordMatches(ctx context.Context, u store.User, password string) (ok bool, err error) {
	if len(password) > MaxPassword {
		return false, nil // never stored, so never a match: skip the hash
	}
	if herr := s.withHashing(ctx, func() { ok, err = checkHash(u.PasswordHash, password) }); herr != nil {
		return false, herr
	}
	return ok, err
}

func (s *service) hash(ctx context.Context, password string) (h string, err error) {
	err = s.withHashing(ctx, func() { h = hashPassword(password, s.cfg.Hash) })
	return h, err
}

func (s *service) register(ctx context.Context, req Register) (Login, error) {
	handle, e := normalizeHandle(req.Handle)
	if e == nil {
		e = checkDisplayName(req.DisplayName)
	}
	if e == nil {
		e = checkPassword(req.Password, handle)
	}
	if e != nil {
		return Login{}, e
	}
	// A cheap early answer for taken handles, before paying for a hash;
	// CreateUser decides.
	switch _, err := s.st.UserByHandle(ctx, handle); {
	case err == nil:
		return Login{}, protocol.Reject(pb.ErrorCode_ERROR_CODE_HANDLE_TAKEN, "handle %s is taken", handle)
	case !errors.Is(err, store.ErrNotFound):
		return Login{}, err
	}
	hash, err := s.hash(ctx, req.Password)
	if err != nil {
		return Login{}, err
	}
	u := store.User{ID: newID("u"), Handle: handle, DisplayName: req.DisplayName, PasswordHash: hash, CreatedAt: now()}
	if err := s.st.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrExists) {
			return Login{}, protocol.Reject(pb.ErrorCode_ERROR_CODE_HANDLE_TAKEN, "handle %s is taken", handle)
		}
		return Login{}, err
	}
	s.log.Info("registered", zap.String("user", u.ID), zap.String("handle", handle))
	return s.startSession(ctx, u)
}

// login answers a wrong handle and a wrong password alike. (Handles are
// public, so this hides nothing; it keeps clients simple.)
func (s *service) login(ctx context.Context, req Credentials) (Login, error) {
	badLogin := protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_CREDENTIALS, "wrong handle or password")
	u, err := s.st.UserByHandle(ctx, strings.ToLower(req.Handle))
	if errors.Is(err, store.ErrNotFound) {
		return Login{}, badLogin
	}
	if err != nil {
		return Login{}, err
	}
	ok, err := s.passwordMatches(ctx, u, req.Password)
	if err != nil {
		return Login{}, err
	}
	if !ok {
		return Login{}, badLogin
	}
	return s.startSession(ctx, u)
}

// startSession creates a login session for u and signs its tokens.
func (s *service) startSession(ctx context.Context, u store.User) (Login, error) {
	secret := newSecret()
	t := now()
	sess := store.Session{ID: newID("s"), User: u.ID, TokenHash: tokenHash(secret), CreatedAt: t, ExpiresAt: t.Add(s.cfg.RefreshTTL)}
	if err := s.st.CreateSession(ctx, sess); err != nil {
		return Login{}, err
	}
	return s.signIn(u, sess, secret)
}

// signIn answers with a new access token and the refresh token of secret.
func (s *service) signIn(u store.User, sess store.Session, secret string) (Login, error) {
	access, exp, err := s.cfg.Signer.Issue(u.ID, sess.ID)
	if err != nil {
		return Login{}, err
	}
	return Login{
		User:             profile(u),
		AccessToken:      access,
		ExpiresAt:        exp.UTC(),
		RefreshToken:     u.ID + "." + sess.ID + "." + secret,
		RefreshExpiresAt: sess.ExpiresAt.UTC(),
	}, nil
}

// newSecret is a refresh token's secret part: 256 random bits.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenHash is what the store keeps of a secret. The secret is random, so
// a fast hash is enough: there is nothing to guess.
func tokenHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// refresh rotates the session's secret and signs new tokens. The session
// keeps its expiry: refreshing never extends a login.
func (s *service) refresh(ctx context.Context, req Refresh) (Login, error) {
	bad := protocol.Reject(pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "invalid, expired or revoked refresh token")
	parts := strings.Split(req.RefreshToken, ".")
	if len(parts) != 3 {
		return Login{}, bad
	}
	user, id, secret := parts[0], parts[1], parts[2]
	sess, err := s.st.Session(ctx, user, id)
	if errors.Is(err, store.ErrNotFound) {
		return Login{}, bad
	}
	if err != nil {
		return Login{}, err
	}
	old := tokenHash(secret)
	if subtle.ConstantTimeCompare(old, sess.TokenHash) != 1 {
		return Login{}, bad
	}
	next := newSecret()
	if err := s.st.RotateSession(ctx, user, id, old, tokenHash(next)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Login{}, bad
		}
		return Login{}, err
	}
	u, err := s.st.User(ctx, user)
	if err != nil {
		return Login{}, err
	}
	return s.signIn(u, sess, next)
}

func (s *service) logout(ctx context.Context, ref SessionRef) (struct{}, error) {
	if ref.Session == "" {
		return struct{}{}, protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "the token belongs to no login session (a development token)")
	}
	return struct{}{}, s.revoke(ctx, ref.User, ref.Session)
}

// revoke ends a session: its access tokens first (the revocation bucket,
// watched by every gateway), then its refresh token. Both steps are
// idempotent, so a failed revoke is simply retried.
func (s *service) revoke(ctx context.Context, user, session string) error {
	if _, err := s.cfg.Revoked.Put(ctx, session, []byte(user)); err != nil {
		return fmt.Errorf("accounts: revoke session %s: %w", session, err)
	}
	if err := s.st.RevokeSession(ctx, user, session); err != nil {
		return err
	}
	s.log.Info("session revoked", zap.String("user", user), zap.String("session", session))
	return nil
}

// changePassword checks the current password, stores the new one's hash,
// and ends every other session of the user: whoever knew the old password
// is logged out.
func (s *service) changePassword(ctx context.Context, req PasswordChange) (struct{}, error) {
	u, err := s.userByID(ctx, req.User)
	if err != nil {
		return struct{}{}, err
	}
	ok, err := s.passwordMatches(ctx, u, req.CurrentPassword)
	if err != nil {
		return struct{}{}, err
	}
	if !ok {
		return struct{}{}, protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_CREDENTIALS, "current_password is wrong")
	}
	if e := checkPassword(req.NewPassword, u.Handle); e != nil {
		return struct{}{}, e
	}
	hash, err := s.hash(ctx, req.NewPassword)
	if err != nil {
		return struct{}{}, err
	}
	if err := s.st.SetPasswordHash(ctx, u.ID, hash); err != nil {
		return struct{}{}, err
	}
	sessions, err := s.st.Sessions(ctx, u.ID)
	if err != nil {
		return struct{}{}, err
	}
	for _, sess := range sessions {
		if sess.ID != req.Session {
			if err := s.revoke(ctx, u.ID, sess.ID); err != nil {
				return struct{}{}, err
			}
		}
	}
	return struct{}{}, nil
}

// userByID reads a user, answering USER_NOT_FOUND for unknown ids.
func (s *service) userByID(ctx context.Context, id string) (store.User, error) {
	u, err := s.st.User(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return u, protocol.Reject(pb.ErrorCode_ERROR_CODE_USER_NOT_FOUND, "no user %s", id)
	}
	return u, err
}

func (s *service) user(ctx context.Context, q UserQuery) (Profile, error) {
	u, err := s.userByID(ctx, q.ID)
	return profile(u), err
}

// unknown returns the ids that no account holds, in the order given.
func (s *service) unknown(ctx context.Context, q UserIDs) (UserIDs, error) {
	out := UserIDs{IDs: []string{}}
	if len(q.IDs) > MaxUserIDs {
		return out, protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "at most %d user ids at once", MaxUserIDs)
	}
	known := make([]bool, len(q.IDs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, id := range q.IDs {
		g.Go(func() error {
			_, err := s.st.User(gctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			known[i] = err == nil
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return out, err
	}
	for i, id := range q.IDs {
		if !known[i] {
			out.IDs = append(out.IDs, id)
		}
	}
	return out, nil
}

// users looks up a handle exactly (a page of zero or one) or pages the
// users whose handle starts with a prefix.
func (s *service) users(ctx context.Context, q UserQuery) (UserPage, error) {
	page := UserPage{Users: []Profile{}}
	if (q.Handle == "") == (q.Prefix == "") {
		return page, protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "give one of handle and prefix")
	}
	if q.Handle != "" {
		u, err := s.st.UserByHandle(ctx, strings.ToLower(q.Handle))
		if err == nil {
			page.Users = append(page.Users, profile(u))
		} else if !errors.Is(err, store.ErrNotFound) {
			return page, err
		}
		return page, nil
	}
	prefix := strings.ToLower(q.Prefix)
	if len(prefix) < store.MinSearchPrefix || len(prefix) > maxHandle || !handleChars(prefix) {
		return page, protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "prefix: %d-%d characters of a-z, 0-9, _ and .", store.MinSearchPrefix, maxHandle)
	}
	limit, e := pageLimit(q.Limit)
	if e != nil {
		return page, e
	}
	found, err := s.st.SearchUsers(ctx, prefix, strings.ToLower(q.After), limit)
	if err != nil {
		return page, err
	}
	for _, u := range found {
		page.Users = append(page.Users, profile(u))
	}
	if len(found) == limit {
		page.Next = found[limit-1].Handle
	}
	return page, nil
}
