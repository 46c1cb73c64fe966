// Package reactor is an epoll WebSocket server (Linux) built on
// golang.org/x/sys/unix and gobwas/ws, for holding very many mostly idle
// connections: an idle connection costs a slot in an fd-indexed table and
// a timer wheel entry, and no goroutine or buffer.
//
// One listener serves both WebSocket and plain HTTP: a bounded pool of
// handshake goroutines reads each new connection's request line, upgrades
// GET requests of the WebSocket path with ws.Upgrader, and hands every
// other request to net/http. Upgraded sockets leave Go's poller for one of
// a few epoll loops, which read into one shared buffer per loop, parse
// frames without blocking, and pass complete messages to a bounded worker
// pool that keeps each connection's order. Sends write to the socket
// directly and queue only what the socket does not take.
//
// The frame parser and the close-code mapping are portable, and shared
// with the goroutine-per-connection transport.
package reactor
