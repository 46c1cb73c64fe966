package node_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/internal/tlsreload/tlstest"
)

// A node whose roles reach an external nats-server that requires TLS and
// client certificates: with the test CA and a client certificate a message
// goes through; without the certificate the node fails to start, promptly.
func TestNATSTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	caFile := filepath.Join(dir, "ca.crt")
	ca.WriteCACert(t, caFile)
	serverCert, serverKey := filepath.Join(dir, "nats.crt"), filepath.Join(dir, "nats.key")
	ca.WriteServerCert(t, serverCert, serverKey)
	clientCert, clientKey := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	ca.WriteClientCert(t, "parley", clientCert, clientKey)
	url := startTLSNATS(t, filepath.Join(dir, "nats"), caFile, serverCert, serverKey)

	cfg := testConfig(t, filepath.Join(dir, "node"))
	cfg.Embedded = false
	cfg.NATSURL = url
	cfg.NATSTLS = node.NATSTLS{CAFile: caFile, CertFile: clientCert, KeyFile: clientKey}
	n := startNode(t, cfg)
	room := createRoom(t, n, "alice", "bob")
	alice, bob := dial(t, n, "alice", ""), dial(t, n, "bob", "")
	subscribe(t, alice, room)
	subscribe(t, bob, room)
	chat(t, alice, room, "over-nats-tls", alice, bob)

	cfg = testConfig(t, filepath.Join(dir, "nocert"))
	cfg.Embedded = false
	cfg.NATSURL = url
	cfg.NATSTLS = node.NATSTLS{CAFile: caFile}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		n, err := node.Start(ctx, cfg, zaptest.NewLogger(t))
		if err == nil {
			n.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a node without a client certificate started against a server that requires one")
		}
		t.Logf("without a client certificate: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("a node without a client certificate neither started nor failed within 30s")
	}
}

// startTLSNATS starts a JetStream nats-server that accepts only TLS
// clients presenting a certificate of the CA in caFile, and returns its
// tls:// URL.
func startTLSNATS(t *testing.T, storeDir, caFile, certFile, keyFile string) string {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile, CaFile: caFile, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := server.NewServer(&server.Options{
		Host:       "127.0.0.1",
		Port:       -1,
		HTTPPort:   0,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		TLS:        true,
		TLSVerify:  true,
		TLSConfig:  tc,
		TLSTimeout: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	return "tls://" + ns.Addr().String()
}
