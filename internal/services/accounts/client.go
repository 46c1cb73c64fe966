package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Client calls the accounts service. An error the service answered with is
// a *protocol.Error; transport failures (no responders, timeout) are wrapped nats
// errors.
type Client struct{ nc *nats.Conn }

// NewClient returns a client sending requests on nc.
func NewClient(nc *nats.Conn) *Client { return &Client{nc: nc} }

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// call sends req to subject and decodes the reply's result.
func call[T any](ctx context.Context, c *Client, subject string, req any) (T, error) {
	var out reply[T]
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	data, err := json.Marshal(req)
	if err != nil {
		return out.Result, fmt.Errorf("accounts: encode %s: %w", subject, err)
	}
	msg, err := c.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return out.Result, fmt.Errorf("accounts: %s: %w", subject, err)
	}
	if err := json.Unmarshal(msg.Data, &out); err != nil {
		return out.Result, fmt.Errorf("accounts: decode %s: %w", subject, err)
	}
	if out.Error != nil {
		return out.Result, out.Error
	}
	return out.Result, nil
}

// Register creates an account and logs it in.
func (c *Client) Register(ctx context.Context, r Register) (Login, error) {
	return call[Login](ctx, c, SubjectRegister, r)
}

// Login starts a session.
func (c *Client) Login(ctx context.Context, cr Credentials) (Login, error) {
	return call[Login](ctx, c, SubjectLogin, cr)
}

// Refresh rotates a refresh token.
func (c *Client) Refresh(ctx context.Context, r Refresh) (Login, error) {
	return call[Login](ctx, c, SubjectRefresh, r)
}

// Logout revokes a session.
func (c *Client) Logout(ctx context.Context, ref SessionRef) error {
	_, err := call[struct{}](ctx, c, SubjectLogout, ref)
	return err
}

// ChangePassword replaces a password and ends the user's other sessions.
func (c *Client) ChangePassword(ctx context.Context, p PasswordChange) error {
	_, err := call[struct{}](ctx, c, SubjectPassword, p)
	return err
}

// User returns the profile of the user with id.
func (c *Client) User(ctx context.Context, id string) (Profile, error) {
	return call[Profile](ctx, c, SubjectUser, UserQuery{ID: id})
}

// Unknown returns the ids of ids (at most MaxUserIDs) that no account
// holds.
func (c *Client) Unknown(ctx context.Context, ids []string) ([]string, error) {
	res, err := call[UserIDs](ctx, c, SubjectUnknown, UserIDs{IDs: ids})
	return res.IDs, err
}

// Users looks users up by exact handle or handle prefix.
func (c *Client) Users(ctx context.Context, q UserQuery) (UserPage, error) {
	return call[UserPage](ctx, c, SubjectUsers, q)
}

// RequestFriend sends a friend request.
func (c *Client) RequestFriend(ctx context.Context, t Target) (Entry, error) {
	return call[Entry](ctx, c, SubjectFriendRequest, t)
}

// AcceptFriend accepts the request t.User sent t.Actor.
func (c *Client) AcceptFriend(ctx context.Context, t Target) (Entry, error) {
	return call[Entry](ctx, c, SubjectFriendAccept, t)
}

// Social runs a social action without a result: SubjectFriendDecline,
// SubjectFriendCancel, SubjectFriendRemove, SubjectBlock or SubjectUnblock.
func (c *Client) Social(ctx context.Context, subject string, t Target) error {
	_, err := call[struct{}](ctx, c, subject, t)
	return err
}

// List pages one of the actor's listings.
func (c *Client) List(ctx context.Context, q ListQuery) (EntryPage, error) {
	return call[EntryPage](ctx, c, SubjectList, q)
}
