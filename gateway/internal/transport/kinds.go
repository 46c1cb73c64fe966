package transport

import (
	"context"
	"net"
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

// server is one transport's listener loop.
type server interface {
	Serve(ln net.Listener) error
	// Shutdown stops accepting; WebSocket connections stay open.
	Shutdown(ctx context.Context) error
	// Close releases the transport, ending connections still open.
	Close()
}
