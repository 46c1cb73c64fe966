package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/tlsreload/tlstest"
	"github.com/parley-chat/parley/pkg/client"
)

// `parley dev --tls-cert … --tls-key …` serves https and wss, says so, and
// refuses the epoll transport.
func TestDevServesTLS(t *testing.T) {
	bin := buildParley(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.WriteServerCert(t, certFile, keyFile)
	tlsFlags := []string{"--tls-cert", certFile, "--tls-key", keyFile}

	epollArgs, _ := devArgs(t, dir, "epoll")
	code, _, stderr := parley(t, append(epollArgs, append(tlsFlags, "--ws-transport", "epoll")...)...)
	if code != 1 || !strings.Contains(stderr, "cannot serve TLS") {
		t.Fatalf("dev with TLS on epoll: exit %d, stderr %q; want exit 1 saying it cannot serve TLS", code, stderr)
	}

	args, addr := devArgs(t, dir, "tls")
	cmd := exec.Command(bin, append(args, tlsFlags...)...)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &devProcess{cmd: cmd, http: addr, out: out}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := hc.Get("https://" + p.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("parley dev not healthy over https in 60s: %v\n%s", err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "wss://"+p.http+"/ws", client.Options{TLSConfig: &tls.Config{RootCAs: ca.Pool()}})
	if err != nil {
		t.Fatalf("wss:// handshake: %v", err)
	}
	c.Close()
	p.stop(t) // out is complete once the process has exited
	port := portOf(addr)
	if banner := "running at https://localhost:" + port + "  (WebSocket wss://localhost:" + port + "/ws"; !strings.Contains(out.String(), banner) {
		t.Errorf("dev's banner does not say %q:\n%s", banner, out)
	}
}

// devArgs are the arguments of `parley dev` on free ports, keeping its data
// under dir/name, and its --http-addr.
func devArgs(t *testing.T, dir, name string) ([]string, string) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	return []string{"dev",
		"--data-dir", filepath.Join(dir, name),
		"--http-addr", addr,
		"--nats-port", strconv.Itoa(freePort(t)),
		"--nats-http-port", "0",
		"--log-level", "warn"}, addr
}
