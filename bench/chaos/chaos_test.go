package chaos

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/bench/coord"
	"github.com/parley-chat/parley/bench/report"
	"github.com/parley-chat/parley/bench/scenario"
)

// Ports of the test's cluster: below the ephemeral range, apart from
// cluster.sh's defaults and from the Cassandra test node of `make test`
// (9042), so a cluster someone runs by hand does not collide with it.
var clusterPorts = []string{
	"--http-port", "27080", "--nats-base-port", "21222",
	"--cassandra-port", "27042", "--cassandra-storage-port", "27000",
}

// The schedule: one kill -9 of each role and of the CHAT_MSG leader, and a
// store outage; load before, between and after, all short.
var chaosArgs = []string{
	"--rooms", "20", "--members", "4", "--rate", "100",
	"--faults", "kill:processor-1,kill:archiver-1,kill:gateway-1,kill:nats-leader,store",
	"--before", "8s", "--after", "20s", "--down", "3s", "--outage", "20s",
}

// requireTools skips the test when something the cluster needs is
// missing, or fails it where a missing backend is an error (CI=true or
// PARLEY_REQUIRE_CASSANDRA=1, as for the store tests).
func requireTools(t *testing.T) {
	t.Helper()
	var missing []string
	for _, c := range []string{"bash", "java", "mvn", "curl", "ss", "setsid", "go"} {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "the local cluster needs " + strings.Join(missing, ", ") + " (see deploy/local-cluster/README.md)"
	if os.Getenv("CI") == "true" || os.Getenv("PARLEY_REQUIRE_CASSANDRA") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole cluster and runs for minutes")
	}
	requireTools(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(repo, "deploy/local-cluster/cluster.sh")
	dir := t.TempDir()
	bin := filepath.Join(dir, "parley")
	command(t, repo, 5*time.Minute, "go", "build", "-o", bin, "./cmd/parley")

	start := append([]string{"start", dir, "--bench", "--gateways", "2", "--bin", bin}, clusterPorts...)
	t.Cleanup(func() {
		if t.Failed() {
			logTails(t, dir)
		}
		cmd := exec.Command(script, "stop", dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cluster.sh stop: %v\n%s", err, out)
		}
	})
	command(t, repo, 5*time.Minute, script, start...)

	env, err := scenario.ReadClusterEnv(filepath.Join(dir, "cluster.env"))
	if err != nil {
		t.Fatal(err)
	}
	e := scenario.Env{
		URLs: []string{env["CLUSTER_WS"]}, API: env["CLUSTER_HTTP"], NATSURL: env["CLUSTER_NATS"],
		Spawn: coord.InProcess(), Workers: 2, PerWorker: 1000,
		BodySize: 64, EventBuffer: 256, DialConcurrency: 16, MaxInFlight: 1000,
		Log: testLog{t},
	}
	sc, _ := scenario.Lookup("chaos")
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	build := sc.Bind(fs)
	if err := fs.Parse(append([]string{"--cluster", dir}, chaosArgs...)); err != nil {
		t.Fatal(err)
	}
	d, err := build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	o, err := scenario.Run(ctx, e, "chaos", d)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results")
	rdir := report.Dir(out, "chaos", o.Result.Start)
	if err := report.Write(rdir, o.Result); err != nil {
		t.Fatal(err)
	}
	if err := scenario.WriteFindings(rdir, o.Findings); err != nil {
		t.Fatal(err)
	}
	if md, err := os.ReadFile(filepath.Join(rdir, "summary.md")); err == nil {
		t.Logf("report:\n%s", md)
	}

	v := o.Result.Run.Verify
	if v == nil || !v.Clean() {
		t.Errorf("verification: %+v", v)
	} else if v.Sent == 0 || v.Acked != v.Sent {
		t.Errorf("%d sent, %d acked", v.Sent, v.Acked)
	}
	if len(o.Steps) != 5 {
		t.Errorf("%d steps, want one per fault (5)", len(o.Steps))
	}
	for _, s := range o.Steps {
		if s.Fault.Err != "" || s.Fault.Lifted.IsZero() {
			t.Errorf("%s: fault %+v", s.Step.Name, s.Fault)
		}
	}
	if a := o.Archive; a == nil || !a.OK() {
		t.Errorf("archive: %+v", a)
	}
	for _, f := range o.Findings.Failures {
		t.Errorf("failed: %s", f)
	}
}

// command runs name with args in dir, failing the test on an error.
func command(t *testing.T, dir string, limit time.Duration, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// logTails logs the end of every process's log, for a failed run.
func logTails(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		t.Logf("---- %s (last 15 lines) ----\n%s", filepath.Base(l), strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
