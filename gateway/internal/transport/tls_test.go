package transport

import (
	"errors"
	"net/http"
	"testing"

	"go.uber.org/zap"
)

// TLS runs on the goroutine transport unless another is named, and is
// refused on the epoll transport.
func TestTLSTransport(t *testing.T) {
	files := TLSConfig{CertFile: "tls.crt", KeyFile: "tls.key"}
	if got := (Config{TLS: files}).WithDefaults().Transport; got != Goroutine {
		t.Errorf("transport with TLS: %s, want %s", got, Goroutine)
	}
	if got := (Config{}).WithDefaults().Transport; got != DefaultTransport {
		t.Errorf("transport without TLS: %s, want %s", got, DefaultTransport)
	}
	up := NewUpgrader(Config{Transport: Epoll, TLS: files}, nil, zap.NewNop())
	if _, err := New(up, http.NotFoundHandler()); !errors.Is(err, ErrEpollTLS) {
		t.Errorf("epoll transport with TLS: %v, want %v", err, ErrEpollTLS)
	}
}
