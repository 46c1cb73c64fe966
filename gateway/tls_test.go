package gateway

import (
	"errors"
	"testing"
)

// TLS runs on the goroutine transport unless another is named, and is
// refused on the epoll transport.
func TestTLSTransport(t *testing.T) {
	files := TLSConfig{CertFile: "tls.crt", KeyFile: "tls.key"}
	if got := (Config{TLS: files}).withDefaults().Transport; got != TransportGoroutine {
		t.Errorf("transport with TLS: %s, want %s", got, TransportGoroutine)
	}
	if got := (Config{}).withDefaults().Transport; got != DefaultTransport {
		t.Errorf("transport without TLS: %s, want %s", got, DefaultTransport)
	}
	g := &Gateway{cfg: Config{Transport: TransportEpoll, TLS: files}.withDefaults()}
	if _, err := g.newServer(); !errors.Is(err, errEpollTLS) {
		t.Errorf("epoll transport with TLS: %v, want %v", err, errEpollTLS)
	}
}
