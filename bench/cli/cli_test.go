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

func TestMetricsAndAPIURLs(t *testing.T) {
	env := func(args ...string) (scenario.Env, error) {
		var o options
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		o.bind(fs)
		if err := fs.Parse(append([]string{"--server-pid", "1", "--nats-url", ""}, args...)); err != nil {
			t.Fatal(err)
		}
		return o.env(context.Background(), nil)
	}
	e, err := env("--url", "ws://127.0.0.1:1/ws,ws://127.0.0.1:1/ws")
	if err != nil || !slices.Equal(e.Metrics, []string{"http://127.0.0.1:1/metrics"}) || e.API != "http://127.0.0.1:1" {
		t.Fatalf("one gateway twice: metrics %q, API %q, %v", e.Metrics, e.API, err)
	}
	e, err = env("--url", "ws://127.0.0.1:1/ws", "--metrics-url", "http://127.0.0.1:2/metrics, http://127.0.0.1:3/metrics", "--api-url", "http://127.0.0.1:4/")
	if err != nil || !slices.Equal(e.Metrics, []string{"http://127.0.0.1:2/metrics", "http://127.0.0.1:3/metrics"}) || e.API != "http://127.0.0.1:4" {
		t.Fatalf("metrics %q, API %q, %v", e.Metrics, e.API, err)
	}
	for _, bad := range [][]string{{"--metrics-url", "http://10.0.0.1:2/metrics"}, {"--api-url", "ws://127.0.0.1:4"}} {
		if _, err := env(bad...); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
