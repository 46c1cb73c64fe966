package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/parley-chat/parley/gateway/reactor"
	"github.com/parley-chat/parley/pkg/protocol"
)

// newEpollServer serves /ws from the reactor and everything else with
// handler. (A keep-alive HTTP connection that asks for /ws later is
// upgraded by handler's Upgrader, the goroutine transport: browsers and SDKs
// open a fresh connection for a WebSocket, so this stays rare.)
func newEpollServer(up *Upgrader, handler http.Handler) (server, error) {
	cfg := up.cfg
	return reactor.New(reactor.Config{
		Path: "/ws",
		HTTP: handler,
		Protocol: func(name string) (ws.OpCode, bool) {
			if c := protocol.ForSubprotocol(name); c != nil {
				return dataOpCode(c), true
			}
			return 0, false
		},
		NoProtocol: noSubprotocol,
		Open: func(c reactor.Conn, subprotocol string) reactor.Handler {
			return up.open(c, protocol.ForSubprotocol(subprotocol))
		},
		MaxMessageSize: cfg.MaxFrameSize,
		SendQueue:      cfg.SendQueue,
		Heartbeat:      cfg.Heartbeat,
		IdleTimeout:    cfg.IdleTimeout,
		WriteTimeout:   cfg.WriteTimeout,
		Pollers:        cfg.Pollers,
		Log:            up.log.Named("reactor"),
		OnClose:        up.Closes.closed,
		Traffic:        &up.Traffic,
	})
}

// Listen opens the gateway's TCP listener. With reusePort, several gateway
// processes can listen on one port (SO_REUSEPORT) and the kernel spreads
// new connections among them.
func Listen(addr string, reusePort bool) (net.Listener, error) {
	var lc net.ListenConfig
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var opErr error
			err := c.Control(func(fd uintptr) {
				opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			})
			return errors.Join(err, opErr)
		}
	}
	return lc.Listen(context.Background(), "tcp", addr)
}
