//go:build !linux

package transport

// DefaultTransport is the transport of a Config that names none.
const DefaultTransport = Goroutine
