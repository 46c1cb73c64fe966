package transport

import (
	"github.com/gobwas/ws"

	"github.com/parley-chat/parley/pkg/protocol"
)

// Conn is a client connection as a session sees it. The transport behind it
// owns WebSocket framing, heartbeats, idle timeouts and write buffers, so it
// can be replaced (goroutine per connection, or an epoll reactor) without
// touching sessions, hubs or the API.
type Conn interface {
	// Send queues one encoded frame and never blocks. A connection whose
	// queue is full is closed as a slow consumer, so one slow reader never
	// holds up a room's fan-out.
	Send(frame []byte)
	// SendWait queues one encoded frame, waiting while the queue is full;
	// it reports false once the connection is closing. It serves catch-up,
	// where only the reading client is slowed down by its own backlog.
	SendWait(frame []byte) bool
	// Close sends a close frame with code and reason, then releases the
	// connection. It is safe to call more than once and from any goroutine.
	Close(code int, reason string)
	RemoteAddr() string
}

// FrameHandler is what a transport calls for a connection: Handle for every
// complete data message, in order, and Closed once after the last one.
type FrameHandler interface {
	Handle(data []byte)
	Closed()
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
