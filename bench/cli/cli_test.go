package cli

import (
	"net"
	"os"
	"slices"
	"testing"
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
