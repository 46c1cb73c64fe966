package accounts

import (
	"time"

	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// Endpoint subjects. Requests and replies are JSON; a reply is
// {"result": ...} or {"error": {"code", "message"}}, a protocol.Error with
// a code of schemas/README.md. Fields naming the
// acting user (Actor, User of SessionRef) are trusted: only the gateway,
// which takes them from a verified token, may send them.
const (
	SubjectRegister = "parley.accounts.register"
	SubjectLogin    = "parley.accounts.login"
	SubjectRefresh  = "parley.accounts.refresh"
	SubjectLogout   = "parley.accounts.logout"
	SubjectPassword = "parley.accounts.password"
	SubjectUser     = "parley.accounts.user"
	SubjectUsers    = "parley.accounts.users"
	SubjectUnknown  = "parley.accounts.unknown"

	SubjectFriendRequest = "parley.friends.request"
	SubjectFriendAccept  = "parley.friends.accept"
	SubjectFriendDecline = "parley.friends.decline"
	SubjectFriendCancel  = "parley.friends.cancel"
	SubjectFriendRemove  = "parley.friends.remove"
	SubjectBlock         = "parley.friends.block"
	SubjectUnblock       = "parley.friends.unblock"
	SubjectList          = "parley.friends.list"
)

// reply is the envelope of every answer.
type reply[T any] struct {
	Result T               `json:"result"`
	Error  *protocol.Error `json:"error,omitempty"`
}

// Profile is what anyone may see of a user.
type Profile struct {
	ID          string    `json:"id"`
	Handle      string    `json:"handle"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
}

func profile(u store.User) Profile {
	return Profile{ID: u.ID, Handle: u.Handle, DisplayName: u.DisplayName, CreatedAt: u.CreatedAt}
}

// Login is a signed-in session: the answer to register, login and refresh.
type Login struct {
	User             Profile   `json:"user"`
	AccessToken      string    `json:"access_token"`
	ExpiresAt        time.Time `json:"expires_at"` // of the access token
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"` // of the session
}

// Register creates an account. Handles are case-insensitive.
type Register struct {
	Handle      string `json:"handle"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name,omitempty"`
}

// Credentials log in.
type Credentials struct {
	Handle   string `json:"handle"`
	Password string `json:"password"`
}

// Refresh exchanges a refresh token for a new pair.
type Refresh struct {
	RefreshToken string `json:"refresh_token"`
}

// SessionRef names the session of a verified access token (logout).
type SessionRef struct {
	User    string `json:"user"`
	Session string `json:"session"`
}

// PasswordChange replaces the password of the session's user and ends
// the user's other sessions.
type PasswordChange struct {
	SessionRef
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// UserQuery looks users up: by ID (the user endpoint), or by exact Handle
// or handle Prefix, paged after the handle After (the users endpoint).
type UserQuery struct {
	ID     string `json:"id,omitempty"`
	Handle string `json:"handle,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	After  string `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// UserIDs are user ids: those to check, or those that no account holds
// (the unknown endpoint), at most MaxUserIDs.
type UserIDs struct {
	IDs []string `json:"ids"`
}

// MaxUserIDs bounds one unknown request (a room's initial members).
const MaxUserIDs = 1000

// UserPage is a page of users; Next, when set, is the After of the next.
type UserPage struct {
	Users []Profile `json:"users"`
	Next  string    `json:"next,omitempty"`
}

// Target is a social action of Actor aimed at User.
type Target struct {
	Actor string `json:"actor"`
	User  string `json:"user"`
}

// ListQuery pages one of Actor's listings after the user id After.
type ListQuery struct {
	Actor string             `json:"actor"`
	List  store.RelationList `json:"list"`
	After string             `json:"after,omitempty"`
	Limit int                `json:"limit,omitempty"`
}

// Entry is a user on a listing, and since when.
type Entry struct {
	User  Profile   `json:"user"`
	Since time.Time `json:"since"`
}

// EntryPage is a page of a listing; Next, when set, is the After of the
// next.
type EntryPage struct {
	Entries []Entry `json:"entries"`
	Next    string  `json:"next,omitempty"`
}

// Page sizes of the users and list endpoints.
const (
	DefaultPage = 50
	MaxPage     = 100
)
