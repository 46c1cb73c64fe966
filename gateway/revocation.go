package gateway

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/pkg/auth"
	"github.com/parley-chat/parley/pkg/protocol"
)

// Revocations tells which login sessions are revoked (logout, password
// change); accounts.Revocations mirrors them from the bus.
type Revocations interface {
	Revoked(session string) bool
}

// UseRevocations makes the gateway refuse the access tokens of revoked
// sessions. Call it before Start; pair it with CloseLogin so connections
// already open end too.
func (g *Gateway) UseRevocations(r Revocations) { g.revoked = r }

// verify checks an access token's signature and expiry and that its
// session is not revoked.
func (g *Gateway) verify(token string) (auth.Claims, error) {
	c, err := g.signer.Verify(token)
	if err == nil && g.revoked != nil && g.revoked.Revoked(c.SessionID) {
		return auth.Claims{}, fmt.Errorf("%w: session revoked", auth.ErrInvalidToken)
	}
	return c, err
}

// ReasonRevoked is the close reason of connections whose login session was
// revoked (close code 1008).
const ReasonRevoked = "session revoked"

// CloseLogin closes every connection authenticated with a token of the
// login session login. The revocation must already be visible to verify:
// a connection authenticating concurrently is then either refused by
// verify or found here (session.authenticate verifies and records its
// login under one lock). It walks every connection: revocations are rare.
func (g *Gateway) CloseLogin(login string) {
	if login == "" {
		return
	}
	for _, s := range g.sessions.all() {
		s.mu.Lock()
		match := s.login == login
		s.mu.Unlock()
		if match {
			g.log.Info("closing: login session revoked", zap.String("session", s.id()))
			s.conn.Close(protocol.ClosePolicy, ReasonRevoked)
		}
	}
}
