package transport

import (
	"errors"
	"time"
)

// Config tunes the transport; zero fields take the defaults.
type Config struct {
	Transport    string        // Epoll (default on Linux without TLS) or Goroutine
	TLS          TLSConfig     // serve TLS only when set
	Pollers      int           // epoll loops (default: one per CPU)
	MaxFrameSize int64         // largest WebSocket message
	SendQueue    int           // frames queued per connection before it counts as slow (default 4096)
	Heartbeat    time.Duration // server ping interval (default 25s)
	IdleTimeout  time.Duration // close after this long without any frame (default 60s)
	WriteTimeout time.Duration // a stalled write closes the connection as slow (default 10s)
}

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.SendQueue <= 0 {
		c.SendQueue = 4096
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 25 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Transport == "" {
		c.Transport = DefaultTransport
		if c.TLS.Enabled() {
			c.Transport = Goroutine // the only one carrying TLS
		}
	}
	return c
}

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
