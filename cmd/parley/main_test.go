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
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/pkg/client"
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

func startDev(t *testing.T, bin, dataDir string) *devProcess {
	t.Helper()
	httpPort := freePort(t)
	cmd := exec.Command(bin, "dev",
		"--data-dir", dataDir,
		"--http-addr", "127.0.0.1:"+strconv.Itoa(httpPort),
		"--nats-port", strconv.Itoa(freePort(t)),
		"--nats-http-port", strconv.Itoa(freePort(t)),
		"--log-level", "warn")
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

// `parley dev` (what `make run` starts) serves health and WebSocket, stops
// cleanly on Ctrl-C, and a restart on the same data dir continues the
// room's history and seq.
func TestDevProcessServesAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "parley")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	data := filepath.Join(dir, "data")
	p := startDev(t, bin, data)
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

	p = startDev(t, bin, data)
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
