package transport

import (
	"crypto/tls"
	"errors"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/internal/tlsreload"
)

// newTLS loads the certificate, failing if it is not valid, and returns
// the listener's TLS configuration, which serves the files' current
// certificate (tlsreload).
func newTLS(c TLSConfig, log *zap.Logger) (*tls.Config, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("TLS needs both a certificate and a key file (--tls-cert, --tls-key)")
	}
	certs, err := tlsreload.New(c.CertFile, c.KeyFile, c.CheckInterval, log.Named("tls"))
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		GetCertificate: certs.GetCertificate,
		// HTTP/1.1 only: a WebSocket handshake is an HTTP/1.1 upgrade, and
		// WebSockets over HTTP/2 (RFC 8441) are not served.
		NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12,
	}, nil
}
