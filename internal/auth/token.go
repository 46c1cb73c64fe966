// Package auth issues and verifies Parley's signed access tokens (JWT,
// HS256). A connection is bound to the user id its token names.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken covers malformed, badly signed and expired tokens.
var ErrInvalidToken = errors.New("invalid token")

const issuer = "parley"

// Signer issues and verifies access tokens with one HMAC key.
type Signer struct {
	key []byte
	ttl time.Duration
}

// NewSigner returns a Signer; keys shorter than 32 bytes are refused.
func NewSigner(key []byte, ttl time.Duration) (*Signer, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("auth: signing key must be at least 32 bytes, got %d", len(key))
	}
	return &Signer{key: key, ttl: ttl}, nil
}

// Claims are what a verified token says.
type Claims struct {
	User      string
	SessionID string // the login (refresh token family) it belongs to, if any
	Expires   time.Time
}

type jwtClaims struct {
	jwt.RegisteredClaims
	Session string `json:"sid,omitempty"`
}

// Issue signs an access token for user, valid for the signer's TTL.
func (s *Signer) Issue(user, session string) (string, time.Time, error) {
	now := time.Now()
	exp := now.Add(s.ttl)
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Session: session,
	})
	signed, err := t.SignedString(s.key)
	return signed, exp, err
}

// Verify checks a token's signature, issuer and expiry.
func (s *Signer) Verify(token string) (Claims, error) {
	var c jwtClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
	)
	if err != nil || c.Subject == "" {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return Claims{User: c.Subject, SessionID: c.Session, Expires: c.ExpiresAt.Time}, nil
}
