package gateway

import (
	"fmt"

	"github.com/parley-chat/parley/internal/auth"
)

// Revocations tells which login sessions are revoked (logout, password
// change); accounts.Revocations mirrors them from the bus.
type Revocations interface {
	Revoked(session string) bool
}

// verifier checks access tokens for sessions and the API alike.
type verifier struct {
	signer  *auth.Signer
	revoked Revocations // nil: no session is ever revoked
}

// Verify checks an access token's signature and expiry and that its
// session is not revoked.
func (v *verifier) Verify(token string) (auth.Claims, error) {
	c, err := v.signer.Verify(token)
	if err == nil && v.revoked != nil && v.revoked.Revoked(c.SessionID) {
		return auth.Claims{}, fmt.Errorf("%w: session revoked", auth.ErrInvalidToken)
	}
	return c, err
}
