package cli

import (
	"context"
	"flag"
	"net"
	"os"
	"slices"
	"testing"

	"github.com/parley-chat/parley/bench/scenario"
)

func TestListenersFindsThisProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	pids, err := listeners(port)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, os.Getpid()) {
		t.Fatalf("listeners(%d) = %v, want this process %d", port, pids, os.Getpid())
	}
	ln.Close()
	if pids, _ := listeners(port); slices.Contains(pids, os.Getpid()) {
		t.Fatalf("a closed listener is still found")
	}
}

func TestOnlyLoopbackTargets(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:8080", "127.3.4.5:1"} {
		if _, err := loopbackPort(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.1:8080", "example.com:80", "0.0.0.0:8080", "127.0.0.1", "127.0.0.1:http"} {
		if _, err := loopbackPort(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// parseEnv parses the flags every scenario shares, with a server PID given
// and no NATS unless args say otherwise.
func parseEnv(t *testing.T, args ...string) (scenario.Env, error) {
	t.Helper()
	var o options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.bind(fs)
	if err := fs.Parse(append([]string{"--server-pid", "1", "--nats-url", ""}, args...)); err != nil {
		t.Fatal(err)
	}
	return o.env(context.Background(), nil)
}

func TestMetricsAndAPIURLs(t *testing.T) {
	e, err := parseEnv(t, "--url", "ws://127.0.0.1:1/ws,ws://127.0.0.1:1/ws")
	if err != nil || !slices.Equal(e.Metrics, []string{"http://127.0.0.1:1/metrics"}) || e.API != "http://127.0.0.1:1" {
		t.Fatalf("one gateway twice: metrics %q, API %q, %v", e.Metrics, e.API, err)
	}
	e, err = parseEnv(t, "--url", "ws://127.0.0.1:1/ws", "--metrics-url", "http://127.0.0.1:2/metrics, http://127.0.0.1:3/metrics", "--api-url", "http://127.0.0.1:4/")
	if err != nil || !slices.Equal(e.Metrics, []string{"http://127.0.0.1:2/metrics", "http://127.0.0.1:3/metrics"}) || e.API != "http://127.0.0.1:4" {
		t.Fatalf("metrics %q, API %q, %v", e.Metrics, e.API, err)
	}
	for _, bad := range [][]string{{"--metrics-url", "http://10.0.0.1:2/metrics"}, {"--api-url", "ws://127.0.0.1:4"}} {
		if _, err := parseEnv(t, bad...); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNATSURLList(t *testing.T) {
	for arg, want := range map[string]string{
		"":                      "",
		"nats://127.0.0.1:4222": "nats://127.0.0.1:4222",
		"nats://127.0.0.1:4222, nats://localhost:4223,nats://[::1]:4224": "nats://127.0.0.1:4222,nats://localhost:4223,nats://[::1]:4224",
	} {
		e, err := parseEnv(t, "--nats-url", arg)
		if err != nil || e.NATSURL != want {
			t.Errorf("--nats-url %q: NATS %q, %v; want %q", arg, e.NATSURL, err, want)
		}
	}
	for _, bad := range []string{"nats://127.0.0.1:4222,nats://10.0.0.1:4222", "nats://127.0.0.1:4222,", "127.0.0.1:4222"} {
		if _, err := parseEnv(t, "--nats-url", bad); err == nil {
			t.Errorf("--nats-url %q accepted", bad)
		}
	}
}
