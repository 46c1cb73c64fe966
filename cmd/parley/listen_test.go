package main

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `parley dev` fails at once when an address it would listen on is taken,
// naming the address and the flag that sets it.
func TestDevRefusesTakenAddresses(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	free := func() string { return strconv.Itoa(freePort(t)) }
	for _, flag := range []string{"--http-addr", "--nats-port", "--nats-http-port", "--debug-addr"} {
		t.Run(flag, func(t *testing.T) {
			args := map[string]string{
				"--http-addr":      "127.0.0.1:" + free(),
				"--nats-port":      free(),
				"--nats-http-port": free(),
				"--debug-addr":     "127.0.0.1:" + free(),
			}
			if strings.HasSuffix(flag, "-addr") {
				args[flag] = "127.0.0.1:" + port
			} else {
				args[flag] = port
			}
			argv := []string{"--data-dir", filepath.Join(t.TempDir(), "data"), "--log-level", "warn"}
			for f, v := range args {
				argv = append(argv, f, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			err := runDev(ctx, argv)
			if err == nil {
				t.Fatalf("parley dev started with %s on a taken port", flag)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("failed after %v", d)
			}
			if msg := err.Error(); !strings.Contains(msg, port) || !strings.Contains(msg, flag) {
				t.Errorf("error %q does not name port %s and %s", msg, port, flag)
			}
		})
	}
}
