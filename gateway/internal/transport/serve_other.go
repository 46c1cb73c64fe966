//go:build !linux

package transport

import (
	"errors"
	"net"
	"net/http"
)

func newEpollServer(*Upgrader, http.Handler) (server, error) {
	return nil, errors.New("the epoll transport needs Linux; use " + Goroutine)
}

// Listen opens the gateway's TCP listener; SO_REUSEPORT is Linux only here.
func Listen(addr string, reusePort bool) (net.Listener, error) {
	if reusePort {
		return nil, errors.New("--reuseport needs Linux")
	}
	return net.Listen("tcp", addr)
}
