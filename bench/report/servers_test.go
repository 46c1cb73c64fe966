package report

import (
	"slices"
	"strings"
	"testing"
)

func TestServerFlags(t *testing.T) {
	p := ServerProcess{PID: 7, Command: []string{"/x/bin/parley", "gateway", "--ws-transport", "goroutine", "-reuseport", "--http-addr=127.0.0.1:1"}}
	if v, ok := p.Flag("ws-transport"); !ok || v != "goroutine" {
		t.Fatalf("ws-transport = %q, %v", v, ok)
	}
	if v, ok := p.Flag("http-addr"); !ok || v != "127.0.0.1:1" {
		t.Fatalf("http-addr = %q, %v", v, ok)
	}
	if _, ok := p.Flag("debug-addr"); ok {
		t.Fatal("found an absent flag")
	}
	if p.Role() != "parley gateway" {
		t.Fatalf("role %q", p.Role())
	}
	q := ServerProcess{PID: 8, Command: []string{"parley", "gateway"}}
	got := DescribeServers([]ServerProcess{p, q})
	for _, want := range []string{"2 × `parley gateway`", "goroutine+server default", "PIDs 7, 8"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	in := []string{"parley", "gateway", "--token-key", "s3cret", "-token-key=s3cret", "--scylla-password=pw", "--http-addr", ":1"}
	want := []string{"parley", "gateway", "--token-key", "<redacted>", "-token-key=<redacted>", "--scylla-password=<redacted>", "--http-addr", ":1"}
	if got := Redact(in); !slices.Equal(got, want) {
		t.Fatalf("Redact = %q, want %q", got, want)
	}
	if in[3] != "s3cret" {
		t.Fatal("Redact changed its argument")
	}
}
