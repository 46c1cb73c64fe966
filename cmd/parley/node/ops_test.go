package node_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/natsembed"
)

// get returns an ops endpoint's status and body; status 0 when nothing
// answers.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls path until it answers want.
func waitStatus(t *testing.T, addr, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := get(t, addr, path)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answers %d %q, want %d", path, code, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every role answers /healthz, /readyz and /metrics on its ops address:
// ready once its roles run, 503 when NATS is unreachable, and 503 from the
// moment the node starts draining until it is gone.
func TestOpsEndpoints(t *testing.T) {
	ns, err := natsembed.Start(natsembed.Config{Name: "ops", Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	cfg := testConfig(t, t.TempDir())
	cfg.Embedded, cfg.NATSURL = false, ns.ClientURL()
	cfg.Roles.Gateway = false
	cfg.DebugAddr = "127.0.0.1:0"
	n := startNode(t, cfg)
	addr := n.OpsAddr()
	waitStatus(t, addr, "/healthz", http.StatusOK)
	waitStatus(t, addr, "/readyz", http.StatusOK)
	_, metrics := get(t, addr, "/metrics")
	for _, name := range []string{"parley_processor_messages_total", "parley_processor_partitions", "parley_processor_send_seconds_bucket",
		"parley_notifications_sent_total", "parley_archiver_archived_total", "parley_archiver_lag_messages", "parley_archiver_lag_seconds",
		"go_goroutines", "go_gc_heap_live_bytes", "process_resident_memory_bytes", "go_build_info"} {
		if !hasSeries(metrics, name) {
			t.Errorf("/metrics lacks %s:\n%s", name, metrics)
		}
	}

	ns.Shutdown()
	waitStatus(t, addr, "/readyz", http.StatusServiceUnavailable)
	waitStatus(t, addr, "/healthz", http.StatusServiceUnavailable)
	// Liveness does not depend on NATS.
	if code, body := get(t, addr, "/livez"); code != http.StatusOK {
		t.Errorf("/livez with NATS down: %d %s", code, body)
	}

	// Draining: a node that is closing says so until its listener goes.
	cfg = testConfig(t, t.TempDir())
	cfg.DebugAddr = "127.0.0.1:0"
	n = startNode(t, cfg)
	addr = n.OpsAddr()
	waitStatus(t, addr, "/readyz", http.StatusOK)
	closed := make(chan struct{})
	go func() { defer close(closed); n.Close() }()
	sawDraining := false
	for done := false; !done; {
		select {
		case <-closed:
			done = true
		default:
			if code, body := get(t, addr, "/readyz"); code == http.StatusServiceUnavailable && strings.Contains(body, "draining") {
				sawDraining = true
			}
		}
	}
	if !sawDraining {
		t.Fatal("/readyz never answered 503 draining while the node closed")
	}
	if code, _ := get(t, addr, "/readyz"); code != 0 {
		t.Fatalf("/readyz still answers %d after Close", code)
	}
}

// hasSeries reports whether a Prometheus text exposition has a sample of
// the named series.
func hasSeries(exposition, name string) bool {
	for line := range strings.Lines(exposition) {
		if rest, ok := strings.CutPrefix(line, name); ok && (rest[0] == ' ' || rest[0] == '{') {
			return true
		}
	}
	return false
}

// The gateway's series count what happens: a client that connects,
// authenticates and leaves is one connection opened, one auth request,
// one close with 1000, one user online then offline, and bytes both ways.
func TestGatewayMetricsCount(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.DebugAddr = "127.0.0.1:0"
	n := startNode(t, cfg)
	waitStatus(t, n.OpsAddr(), "/readyz", http.StatusOK)
	c := dial(t, n, "alice", "")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`parley_gateway_connections_opened_total 1`,
		`parley_gateway_requests_total{kind="auth"} 1`,
		`parley_gateway_connections_closed_total{code="1000"} 1`,
		`parley_gateway_presence_transitions_total{to="online"} 1`,
		`parley_gateway_presence_transitions_total{to="offline"} 1`,
		`parley_gateway_slow_consumer_closes_total 0`,
		`parley_gateway_frames_sent_total{kind="answer"} 1`, // the authentication's
	}
	var metrics string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, metrics = get(t, n.OpsAddr(), "/metrics")
		missing := 0
		for _, w := range want {
			if !strings.Contains(metrics, "\n"+w+"\n") {
				missing++
			}
		}
		for _, dir := range []string{"in", "out"} {
			if !regexp.MustCompile(`\nparley_gateway_websocket_bytes_total\{direction="` + dir + `"\} [1-9]`).MatchString(metrics) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
	}
	t.Errorf("/metrics lacks one of %q, or WebSocket bytes in and out:\n%s", want, metrics)
}
