package coord

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/bench/load"
)

func TestCoordinatorRunsPhasesOnWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, InProcess(), 3)
	if err != nil {
		t.Fatal(err)
	}
	// Workers without clients go through every phase at once.
	if _, err := c.Do(ctx, func(i int) Command {
		return Command{Op: OpPlan, Plan: &load.Plan{Worker: i, URLs: []string{"ws://127.0.0.1:1/ws"}}}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.All(ctx, Command{Op: OpConnect, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.All(ctx, Command{Op: OpRun, Traffic: &load.Traffic{Duration: 10 * time.Millisecond}, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	replies, err := c.All(ctx, Command{Op: OpReport, Final: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range replies {
		if r.Op != OpReport || r.Report == nil || r.Report.Verify == nil {
			t.Fatalf("worker %d answered %+v", i, r)
		}
	}
	if pids := c.PIDs(); len(pids) != 1 {
		t.Fatalf("in-process workers in %d processes", len(pids))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWorkerFailureFailsTheCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, InProcess(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A run before any plan makes both workers quit.
	if _, err := c.All(ctx, Command{Op: OpRun}); err == nil || !strings.Contains(err.Error(), "worker") {
		t.Fatalf("call on failing workers: %v", err)
	}
}

func TestServeProtocol(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	if err := Serve(ctx, strings.NewReader(`{"op":"drain"}`+"\n"), &out); err == nil {
		t.Fatal("a drain before the plan was served")
	}
	out.Reset()
	in := `{"op":"plan","plan":{"worker":0,"urls":["ws://127.0.0.1:1/ws"]}}` + "\n" + `{"op":"bogus"}` + "\n" + `{"op":"close"}` + "\n"
	if err := Serve(ctx, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	var lines []string // the answers, without any Stats sent meanwhile
	for l := range strings.Lines(out.String()) {
		if !strings.Contains(l, `"op":"stats"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 || !strings.Contains(lines[1], `"err":"unknown op`) || !strings.Contains(lines[2], `"op":"close"`) {
		t.Fatalf("replies:\n%s", out.String())
	}
	// The coordinator going away ends a worker cleanly.
	if err := Serve(ctx, strings.NewReader(""), &out); err != nil {
		t.Fatal(err)
	}
}
