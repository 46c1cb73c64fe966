package reactor

import "sync/atomic"

// Traffic counts the bytes read from and written to WebSocket
// connections, frame headers included.
type Traffic struct {
	In, Out atomic.Uint64
}
