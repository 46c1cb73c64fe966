package compare

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/bench/report"
	"github.com/parley-chat/parley/bench/scenario"
)

// write puts a result folder of scenario under dir/label.
func write(t *testing.T, dir, label, name, transport string, figures ...scenario.Figure) {
	t.Helper()
	r := report.New(name, nil)
	r.Start = time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	r.End = r.Start.Add(time.Minute)
	r.Servers = []report.ServerProcess{{PID: 1, Command: []string{"parley", "gateway", "--ws-transport", transport}}}
	out := report.Dir(filepath.Join(dir, label), name, r.Start)
	if err := report.Write(out, r); err != nil {
		t.Fatal(err)
	}
	if err := scenario.WriteFindings(out, scenario.Findings{Figures: figures}); err != nil {
		t.Fatal(err)
	}
}

func TestComparison(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "epoll", "connect", "epoll", scenario.Figure{Name: "Server RSS per connection", Value: 2048, Unit: "bytes"})
	write(t, dir, "goroutine", "connect", "goroutine", scenario.Figure{Name: "Server RSS per connection", Value: 20480, Unit: "bytes"})
	write(t, dir, "epoll", "fanout", "epoll", scenario.Figure{Name: "Fan-out deliveries/s", Value: 50000, Unit: "/s"})
	write(t, dir, "goroutine", "fanout", "goroutine", scenario.Figure{Name: "Fan-out deliveries/s", Value: 40000, Unit: "/s"},
		scenario.Figure{Name: "Only here", Value: 1})
	if err := os.WriteFile(filepath.Join(dir, "epoll", "deployment.md"), []byte("# d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Main([]string{dir}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "comparison.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{
		"| connect | Server RSS per connection | 2.0 KiB | 20.0 KiB | 10.00 |",
		"| fanout | Fan-out deliveries/s | 50000 /s | 40000 /s | 0.80 |",
		"| Only here | – | 1 | – |",
		"WebSocket transport epoll", "WebSocket transport goroutine",
		"[deployment](epoll/deployment.md)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("comparison.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "goroutine/deployment.md") {
		t.Error("links a deployment.md that does not exist")
	}
	if err := Main([]string{dir, "epoll"}); err == nil {
		t.Error("one label accepted")
	}
}
