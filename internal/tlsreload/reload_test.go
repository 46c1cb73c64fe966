package tlsreload

import (
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/parley-chat/parley/internal/tlsreload/tlstest"
)

type files struct{ cert, key string }

func tempFiles(t *testing.T, name string) files {
	dir := t.TempDir()
	return files{filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")}
}

// served is the serial of the certificate a handshake gets now.
func served(t *testing.T, r *Reloader) *big.Int {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil || c == nil || c.Leaf == nil {
		t.Fatalf("GetCertificate: %v, %v", c, err)
	}
	return c.Leaf.SerialNumber
}

// expire makes the next handshake look at the files.
func expire(r *Reloader) {
	r.mu.Lock()
	r.nextCheck = time.Time{}
	r.mu.Unlock()
}

func expectServed(t *testing.T, r *Reloader, want *big.Int, what string) {
	t.Helper()
	if got := served(t, r); got.Cmp(want) != 0 {
		t.Fatalf("%s: serving serial %x, want %x", what, got, want)
	}
}

func TestNewRefusesInvalidPair(t *testing.T) {
	ca := tlstest.NewCA(t)
	a, b := tempFiles(t, "a"), tempFiles(t, "b")
	ca.WriteServerCert(t, a.cert, a.key)
	ca.WriteServerCert(t, b.cert, b.key)
	for _, f := range []files{{a.cert, b.key}, {a.cert, filepath.Join(t.TempDir(), "missing.key")}, {a.key, a.cert}} {
		if _, err := New(f.cert, f.key, time.Hour, zap.NewNop()); err == nil {
			t.Errorf("New(%s, %s) accepted an invalid pair", f.cert, f.key)
		}
	}
}

// A rotation is served from the first handshake after the interval; a
// pair that cannot be used leaves the last good certificate in service and
// is logged.
func TestReload(t *testing.T) {
	ca := tlstest.NewCA(t)
	f := tempFiles(t, "tls")
	first := ca.WriteServerCert(t, f.cert, f.key)
	core, logs := observer.New(zap.InfoLevel)
	r, err := New(f.cert, f.key, time.Hour, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	expectServed(t, r, first, "at start")

	second := ca.WriteServerCert(t, f.cert, f.key)
	expectServed(t, r, first, "before the interval has passed")
	expire(r)
	expectServed(t, r, second, "after a rotation")

	other := tempFiles(t, "other")
	ca.WriteServerCert(t, other.cert, other.key)
	mismatched, _ := os.ReadFile(other.cert)
	for _, bad := range []struct {
		what string
		cert []byte // nil: no certificate file
	}{
		{"garbage", []byte("not a certificate")},
		{"a certificate of another key", mismatched},
		{"no certificate file", nil},
	} {
		var err error
		if bad.cert == nil {
			err = os.Remove(f.cert)
		} else {
			err = os.WriteFile(f.cert, bad.cert, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		before := logs.FilterMessage("TLS certificate reload failed, keeping the previous one").Len()
		expire(r)
		expectServed(t, r, second, bad.what)
		if logs.FilterMessage("TLS certificate reload failed, keeping the previous one").Len() != before+1 {
			t.Errorf("%s: the failed reload was not logged", bad.what)
		}
	}

	third := ca.WriteServerCert(t, f.cert, f.key)
	expire(r)
	expectServed(t, r, third, "after the files were fixed")
	// Unchanged files are not put in service again.
	inService := logs.FilterMessage("TLS certificate in service").Len()
	expire(r)
	expectServed(t, r, third, "unchanged files")
	if n := logs.FilterMessage("TLS certificate in service").Len(); n != inService || inService != 3 {
		t.Errorf("certificates put in service: %d then %d, want 3 both times", inService, n)
	}
}

// Handshakes during rotations always get a certificate (and -race sees
// no race between them and the reload).
func TestConcurrentHandshakes(t *testing.T) {
	ca := tlstest.NewCA(t)
	f := tempFiles(t, "tls")
	ca.WriteServerCert(t, f.cert, f.key)
	r, err := New(f.cert, f.key, time.Millisecond, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					if c, _ := r.GetCertificate(nil); c == nil {
						t.Error("a handshake got no certificate")
						return
					}
				}
			}
		})
	}
	var last *big.Int
	for range 20 {
		last = ca.WriteServerCert(t, f.cert, f.key)
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for served(t, r).Cmp(last) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the last rotation was never served")
		}
		time.Sleep(time.Millisecond)
	}
}
