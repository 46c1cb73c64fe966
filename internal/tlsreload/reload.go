// Package tlsreload serves a TLS certificate kept in PEM files that may be
// replaced while the process runs, as cert-manager and Kubernetes secret
// volumes replace them: no restart is needed to rotate it.
package tlsreload

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DefaultInterval is how often a Reloader looks at its files when New is
// given no interval.
const DefaultInterval = 5 * time.Second

// Reloader hands TLS handshakes the certificate in a pair of PEM files.
//
// The first handshake after each interval reads both files again. Files
// whose contents are unchanged cost nothing more; changed ones are parsed
// and, when they hold a valid pair, served from that handshake on. A pair
// that cannot be read or parsed (a rotation half written, a key that does
// not match the certificate) leaves the previous certificate in service
// and is logged, again at each later look until the files are fixed.
// Contents are compared rather than modification times, so that a file
// replaced with its time kept (cp -p, tar) is still seen.
type Reloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *zap.Logger

	cert atomic.Pointer[tls.Certificate] // in service; never nil once New returns

	// mu is held by the one handshake looking at the files; handshakes
	// meanwhile go on with cert.
	mu        sync.Mutex
	nextCheck time.Time // no look at the files before this
	served    digest    // of the files cert was parsed from
}

// digest identifies the contents of the certificate and the key file.
type digest [2][sha256.Size]byte

// New reads the pair once, failing if it is not valid, and returns a
// Reloader that looks at the files again at most once per interval
// (DefaultInterval when interval <= 0).
func New(certFile, keyFile string, interval time.Duration, log *zap.Logger) (*Reloader, error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, interval: interval, log: log}
	certPEM, keyPEM, err := r.readFiles()
	if err != nil {
		return nil, err
	}
	cert, err := parse(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	r.serve(cert, digestOf(certPEM, keyPEM))
	r.nextCheck = time.Now().Add(interval)
	return r, nil
}

// GetCertificate is a tls.Config.GetCertificate: the certificate in
// service, after looking at the files if an interval has passed.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.maybeReload()
	return r.cert.Load(), nil
}

// maybeReload reloads the files if an interval has passed since the last
// look and no other handshake is looking now.
func (r *Reloader) maybeReload() {
	if !r.mu.TryLock() {
		return
	}
	defer r.mu.Unlock()
	now := time.Now()
	if now.Before(r.nextCheck) {
		return
	}
	r.nextCheck = now.Add(r.interval)
	certPEM, keyPEM, err := r.readFiles()
	if err != nil {
		r.reloadFailed(err)
		return
	}
	d := digestOf(certPEM, keyPEM)
	if d == r.served {
		return
	}
	cert, err := parse(certPEM, keyPEM)
	if err != nil {
		r.reloadFailed(err)
		return
	}
	r.serve(cert, d)
}

func (r *Reloader) reloadFailed(err error) {
	r.log.Error("TLS certificate reload failed, keeping the previous one", zap.String("cert", r.certFile), zap.String("key", r.keyFile), zap.Error(err))
}

func (r *Reloader) readFiles() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(r.certFile); err != nil {
		return nil, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	if keyPEM, err = os.ReadFile(r.keyFile); err != nil {
		return nil, nil, fmt.Errorf("TLS key: %w", err)
	}
	return certPEM, keyPEM, nil
}

func parse(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate and key: %w", err)
	}
	return &cert, nil
}

func digestOf(certPEM, keyPEM []byte) digest {
	return digest{sha256.Sum256(certPEM), sha256.Sum256(keyPEM)}
}

// serve puts cert in service and logs what it is.
func (r *Reloader) serve(cert *tls.Certificate, d digest) {
	r.cert.Store(cert)
	r.served = d
	leaf := cert.Leaf // X509KeyPair fills it in
	r.log.Info("TLS certificate in service", zap.String("cert", r.certFile),
		zap.String("subject", leaf.Subject.String()), zap.Strings("dns_names", leaf.DNSNames),
		zap.String("serial", leaf.SerialNumber.Text(16)), zap.Time("not_after", leaf.NotAfter))
}
