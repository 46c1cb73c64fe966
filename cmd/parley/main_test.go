package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// devProcess is `parley dev` running as its own process.
type devProcess struct {
	cmd  *exec.Cmd
	http string
	out  *bytes.Buffer
}

// startDev starts `parley dev`; openFiles > 0 lowers its open-files limit.
func startDev(t *testing.T, bin, dataDir string, openFiles int) *devProcess {
	t.Helper()
	httpPort := freePort(t)
	args := []string{bin, "dev",
		"--data-dir", dataDir,
		"--http-addr", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--nats-port", strconv.Itoa(freePort(t)),
		"--nats-http-port", strconv.Itoa(freePort(t)),
		"--log-level", "warn"}
	if openFiles > 0 {
		args = append([]string{"sh", "-c", `ulimit -n "$0" && exec "$@"`, strconv.Itoa(openFiles)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, http: "127.0.0.1:" + strconv.Itoa(httpPort), out: out}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + p.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("parley dev not healthy in 60s: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGINT and expects a clean exit.
func (p *devProcess) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("parley dev exited with %v\n%s", err, p.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("parley dev did not stop on SIGINT\n%s", p.out)
	}
}

func (p *devProcess) post(t *testing.T, path, token string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+p.http+path, bytes.NewReader(b))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: HTTP %d", path, resp.StatusCode)
	}
	_ = json.NewDecoder(resp.Body).Decode(out)
}

func (p *devProcess) token(t *testing.T, user string) string {
	var r struct{ Token string }
	p.post(t, "/api/v1/dev/tokens", "", map[string]string{"user": user}, &r)
	return r.Token
}

// buildParley builds the binary once for the tests that run it.
func buildParley(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := builtParley()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

var builtParley = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "parley-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "parley")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	return bin, build.Run()
})

// `parley dev` (what `make run` starts) serves health and WebSocket, stops
// cleanly on Ctrl-C, and a restart on the same data dir continues the
// room's history and seq.
func TestDevProcessServesAndRestarts(t *testing.T) {
	bin := buildParley(t)
	data := filepath.Join(t.TempDir(), "data")
	p := startDev(t, bin, data, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, path := range []string{"/readyz", "/metrics"} {
		resp, err := http.Get("http://" + p.http + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	token := p.token(t, "alice")
	var room struct{ ID string }
	p.post(t, "/api/v1/rooms", token, map[string]any{"name": "general"}, &room)
	c, err := client.Dial(ctx, "ws://"+p.http+"/ws", client.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		ack, err := c.Send(ctx, room.ID, fmt.Sprint("m", i), "hello")
		if err != nil || ack.Seq != uint64(i) {
			t.Fatalf("send %d: %v %v", i, ack, err)
		}
	}
	p.stop(t)
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client not disconnected by shutdown")
	}
	if code := c.CloseCode(); code != 1001 {
		t.Fatalf("shutdown close code %d, want 1001", code)
	}

	p = startDev(t, bin, data, 0)
	c, err = client.Dial(ctx, "ws://"+p.http+"/ws", client.Options{Token: p.token(t, "alice")})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := c.Send(ctx, room.ID, "m4", "after restart")
	if err != nil || ack.Seq != 4 {
		t.Fatalf("send after restart: %v %v", ack, err)
	}
	zero := uint64(0)
	if _, err := c.Subscribe(ctx, room.ID, &zero); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 4; want++ {
		select {
		case f := <-c.Events():
			if f.GetMessage().GetSeq() != want {
				t.Fatalf("got %v, want seq %d", f, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("seq %d not delivered", want)
		}
	}
	p.stop(t)
}

// At its open-files limit the gateway refuses a WebSocket handshake with
// 503 rather than upgrading the connection and dropping it, and every
// connection it did take keeps working.
func TestGatewayAtOpenFilesLimit(t *testing.T) {
	bin := buildParley(t)
	p := startDev(t, bin, filepath.Join(t.TempDir(), "data"), 256)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	token := p.token(t, "alice")
	var held []*client.Client
	defer func() {
		for _, c := range held {
			_ = c.Abort()
		}
	}()
	for refused := false; !refused; {
		if len(held) == 256 {
			t.Fatal("256 connections taken under an open-files limit of 256")
		}
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := client.Dial(dctx, "ws://"+p.http+"/ws", client.Options{Token: token})
		dcancel()
		switch {
		case err == nil:
			held = append(held, c)
		case strings.Contains(err.Error(), "503"):
			refused = true
		default:
			t.Fatalf("connection %d: %v; want it taken or refused with 503", len(held)+1, err)
		}
	}
	if len(held) < 10 {
		t.Fatalf("refused after %d connections", len(held))
	}
	t.Logf("%d connections taken, the next refused with 503", len(held))
	for i, c := range held {
		select {
		case <-c.Done():
			t.Fatalf("connection %d of %d taken before the limit was dropped: %v", i+1, len(held), c.Err())
		default:
		}
		if i%10 == 0 { // within the user's request rate
			ping := &pb.ClientFrame{Kind: &pb.ClientFrame_Ping{Ping: &pb.Ping{}}}
			if _, err := c.Request(ctx, ping); err != nil {
				t.Fatalf("connection %d of %d: ping: %v", i+1, len(held), err)
			}
		}
	}
	// Room again once some close.
	for _, c := range held[:5] {
		_ = c.Close()
	}
	held = held[5:]
	var c *client.Client
	var err error
	for range 50 {
		if c, err = client.Dial(ctx, "ws://"+p.http+"/ws", client.Options{Token: token}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no connection taken after 5 closed: %v", err)
	}
	held = append(held, c)
	p.stop(t)
}
