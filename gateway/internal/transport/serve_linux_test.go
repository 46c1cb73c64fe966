package transport

import (
	"net"
	"testing"
	"time"
)

// With reusePort, a second gateway process can listen on the same port.
func TestListenReusePort(t *testing.T) {
	a, err := Listen("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen(a.Addr().String(), true)
	if err != nil {
		t.Fatalf("second listener with SO_REUSEPORT: %v", err)
	}
	defer b.Close()
	if c, err := Listen(a.Addr().String(), false); err == nil {
		c.Close()
		t.Fatal("a listener without SO_REUSEPORT shared the port")
	}
	// The kernel hands new connections to both.
	seen := make(map[net.Listener]bool)
	for range 64 {
		c, err := net.Dial("tcp", a.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	for _, l := range []net.Listener{a, b} {
		_ = l.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
		if c, err := l.Accept(); err == nil {
			seen[l] = true
			c.Close()
		}
	}
	if len(seen) != 2 {
		t.Fatalf("connections reached %d of 2 listeners", len(seen))
	}
}
