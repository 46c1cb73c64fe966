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

	"go.uber.org/zap"
)

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
