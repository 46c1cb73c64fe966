package transport

import (
	"crypto/tls"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/pkg/tlsreload"
)

// TLSConfig makes the gateway's listener serve TLS only (https://, wss://).
//
// The epoll transport cannot carry TLS: it takes a connection's raw socket
// over after the handshake, and a TLS connection's bytes must go through
// crypto/tls. A gateway with TLS and no Transport therefore runs the
// goroutine transport, and one configured with TLS and Epoll
// does not start.
type TLSConfig struct {
	CertFile, KeyFile string // PEM files; both or neither
	// CheckInterval is how often the files are looked at for a new
	// certificate (tlsreload.DefaultInterval by default).
	CheckInterval time.Duration
}

// Enabled reports whether TLS is configured.
func (c TLSConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// ErrEpollTLS refuses TLS on the epoll transport.
var ErrEpollTLS = errors.New("the epoll WebSocket transport cannot serve TLS: it takes over raw sockets, which a TLS connection is not; " +
	"leave --ws-transport unset or set it to " + Goroutine + " (or terminate TLS in front of the gateway)")

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
