//go:build !linux

package gateway

import (
	"errors"
	"net"
)

// DefaultTransport is the transport of a Config that names none.
const DefaultTransport = TransportGoroutine

func (g *Gateway) newEpollServer() (server, error) {
	return nil, errors.New("the epoll transport needs Linux; use " + TransportGoroutine)
}

// Listen opens the gateway's TCP listener; SO_REUSEPORT is Linux only here.
func Listen(addr string, reusePort bool) (net.Listener, error) {
	if reusePort {
		return nil, errors.New("--reuseport needs Linux")
	}
	return net.Listen("tcp", addr)
}
