// Package transport serves a gateway's clients on one port: WebSocket
// upgrades (the parley.v1.json and parley.v1.proto subprotocols), frames,
// heartbeats, idle timeouts and write queues, TLS, and everything else on
// the port handed to an http.Handler. It knows nothing of sessions: a
// connection is handed to Open, and the FrameHandler it returns gets each
// complete message in order and Closed once after the last.
//
// Two transports serve the same Conn contract: a reader and a writer
// goroutine per connection behind net/http (portable, and the only one
// carrying TLS), or the epoll reactor (Linux, no goroutine per idle
// connection).
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/pkg/protocol"
)

// Transports: how client connections are served.
const (
	// Epoll serves WebSockets from a few epoll loops with no goroutine
	// per idle connection (Linux only, the default there).
	Epoll = "epoll"
	// Goroutine runs a reader and a writer goroutine per connection
	// behind net/http (portable, the default elsewhere).
	Goroutine = "goroutine"
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

// Open starts a session for a new connection speaking codec's subprotocol.
type Open func(c Conn, codec protocol.Codec) FrameHandler

// noSubprotocol is the HTTP 400 body of a handshake offering no
// subprotocol Parley speaks.
const noSubprotocol = "unsupported or missing WebSocket subprotocol: offer " + protocol.SubprotocolJSON + " or " + protocol.SubprotocolProto

// dataOpCode is the frame type of a codec's messages.
func dataOpCode(c protocol.Codec) ws.OpCode {
	if c.Binary() {
		return ws.OpBinary
	}
	return ws.OpText
}

// server is one transport's listener loop.
type server interface {
	Serve(ln net.Listener) error
	// Shutdown stops accepting; WebSocket connections stay open.
	Shutdown(ctx context.Context) error
	// Close releases the transport, ending connections still open.
	Close()
}

// Transport accepts clients on a listener and owns their connections' I/O.
type Transport struct {
	srv server
	tls *tls.Config // nil: plain
}

// New makes the transport configured in up's Config; handler serves every
// request on the port (the WebSocket path included: route it to up).
func New(up *Upgrader, handler http.Handler) (*Transport, error) {
	cfg, log := up.cfg, up.log
	t := new(Transport)
	switch cfg.Transport {
	case Goroutine:
		t.srv = goroutineServer{&http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second, // also bounds TLS handshakes
			// net/http's own errors, failed TLS handshakes among them, go
			// to the gateway's log rather than to stderr unstructured.
			ErrorLog: zap.NewStdLog(log.Named("http")),
		}}
	case Epoll:
		if cfg.TLS.Enabled() {
			return nil, ErrEpollTLS
		}
		srv, err := newEpollServer(up, handler)
		if err != nil {
			return nil, err
		}
		t.srv = srv
	default:
		return nil, fmt.Errorf("unknown transport %q: use %s or %s", cfg.Transport, Epoll, Goroutine)
	}
	if cfg.TLS.Enabled() {
		var err error
		if t.tls, err = newTLS(cfg.TLS, log); err != nil {
			return nil, err
		}
		log.Info("serving TLS only (https, wss), with WebSockets on the goroutine transport: the epoll transport cannot carry TLS")
	}
	return t, nil
}

// Serve accepts clients on ln until Shutdown: over TLS only when the
// Config has TLS.
func (t *Transport) Serve(ln net.Listener) error {
	if t.tls != nil {
		ln = tls.NewListener(ln, t.tls)
	}
	return t.srv.Serve(ln)
}

// Shutdown stops accepting; WebSocket connections stay open.
func (t *Transport) Shutdown(ctx context.Context) error { return t.srv.Shutdown(ctx) }

// Close releases the transport, ending connections still open.
func (t *Transport) Close() { t.srv.Close() }

// goroutineServer is net/http with Upgrader: hijacked WebSocket
// connections are not net/http's to close, their sessions are.
type goroutineServer struct{ srv *http.Server }

func (s goroutineServer) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s goroutineServer) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
func (s goroutineServer) Close()                             { _ = s.srv.Close() }
