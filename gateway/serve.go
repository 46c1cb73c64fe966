package gateway

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
	// TransportEpoll serves WebSockets from a few epoll loops with no
	// goroutine per idle connection (Linux only, the default there).
	TransportEpoll = "epoll"
	// TransportGoroutine runs a reader and a writer goroutine per
	// connection behind net/http (portable, the default elsewhere).
	TransportGoroutine = "goroutine"
)

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

// server is a transport: it accepts clients on a listener, serves the HTTP
// API on the same port, and owns its connections' I/O.
type server interface {
	Serve(ln net.Listener) error
	// Shutdown stops accepting; WebSocket connections stay open.
	Shutdown(ctx context.Context) error
	// Close releases the transport, ending connections still open.
	Close()
}

func (g *Gateway) newServer() (server, error) {
	switch g.cfg.Transport {
	case TransportGoroutine:
		return goroutineServer{&http.Server{
			Handler:           g.Handler(),
			ReadHeaderTimeout: 10 * time.Second, // also bounds TLS handshakes
			// net/http's own errors, failed TLS handshakes among them, go
			// to the gateway's log rather than to stderr unstructured.
			ErrorLog: zap.NewStdLog(g.log.Named("http")),
		}}, nil
	case TransportEpoll:
		if g.cfg.TLS.enabled() {
			return nil, errEpollTLS
		}
		return g.newEpollServer()
	}
	return nil, fmt.Errorf("unknown transport %q: use %s or %s", g.cfg.Transport, TransportEpoll, TransportGoroutine)
}

// goroutineServer is net/http with serveWS: hijacked WebSocket connections
// are not net/http's to close, their sessions are.
type goroutineServer struct{ srv *http.Server }

func (s goroutineServer) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s goroutineServer) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
func (s goroutineServer) Close()                             { _ = s.srv.Close() }

// Serve accepts clients on ln, after Start, until Drain: over TLS only
// when Config.TLS is set.
func (g *Gateway) Serve(ln net.Listener) error {
	if g.transport == nil {
		return errors.New("gateway: Serve before Start")
	}
	if g.tls != nil {
		ln = tls.NewListener(ln, g.tls)
	}
	return g.transport.Serve(ln)
}

// Drain stops accepting clients, then closes their connections with 1001
// spread evenly over Config.DrainTime, so they reconnect elsewhere without
// arriving all at once. It returns when every connection has ended, or
// ctx has, and the transport is released.
func (g *Gateway) Drain(ctx context.Context) {
	if g.transport == nil {
		return
	}
	_ = g.transport.Shutdown(ctx)
	all := g.sessions.all()
	start := time.Now()
	for i := 0; i < len(all); {
		due := len(all) // the i-th connection closes at i/len of DrainTime
		if g.cfg.DrainTime > 0 && ctx.Err() == nil {
			due = min(due, int(int64(len(all))*int64(time.Since(start))/int64(g.cfg.DrainTime))+1)
		}
		for ; i < due; i++ {
			all[i].conn.Close(protocol.CloseGoingAway, "gateway draining, reconnect")
		}
		if i < len(all) {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	for g.metrics.connections.Load() > 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	g.transport.Close()
}
