package scenario

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/internal/bus"
)

// The chaos scenario: group chat with verification on a local cluster
// (deploy/local-cluster/cluster.sh) while faults are injected into it, one
// per step, each step a stretch of load before the fault, the fault, and
// load after it, then a drain. Per fault it reports what verification
// found during its step, send→deliver before, during and after, and how
// long p99 took to come back; at the end the history store is checked
// against the rooms (ArchiveCheck).

// Fault kinds.
const (
	faultKill  = "kill"  // kill -9, down for Hold, then restart
	faultPause = "pause" // SIGSTOP for Hold, then SIGCONT
	// faultStore stops Cassandra gracefully (it drains), out for Hold, then
	// restarts it. kill:cassandra is the crash: the local cluster's node
	// syncs its commit log every 10 s, so a kill -9 may lose writes it had
	// acknowledged, which no client of it can make up for.
	faultStore = "store"
)

// Targets resolved when the fault starts: the NATS server leading CHAT_MSG,
// and one of its current followers.
const (
	natsLeader   = "nats-leader"
	natsFollower = "nats-follower"
)

// defaultFaults covers every fault the scenario knows: each role killed,
// the CHAT_MSG leader and a follower killed, the leader and a processor
// paused, and a store outage.
const defaultFaults = "kill:processor-1,kill:archiver-1,kill:gateway-1,kill:nats-leader,kill:nats-follower," +
	"pause:nats-leader,pause:processor-1,store"

// startAllowance is load added to a fault's step for the restart of what
// it stopped (cluster.sh restart waits until the process is ready).
func startAllowance(kind, target string) time.Duration {
	switch {
	case kind == faultStore:
		return 75 * time.Second // a drain, and a JVM starting on a busy machine
	case kind == faultKill && strings.HasPrefix(target, "nats-"):
		return 15 * time.Second // catching up on its streams
	case kind == faultKill:
		return 10 * time.Second
	}
	return 0
}

var chaosScenario = Scenario{
	Name: "chaos",
	Summary: "group chat with verification on a local cluster (deploy/local-cluster) while faults run one per step: " +
		"kill -9 and restart of each role and NATS node, SIGSTOP pauses, a store outage; per fault anomalies, p99 and recovery, then the archive checked",
	Bind: func(fs *flag.FlagSet) func() (Design, error) {
		cluster := fs.String("cluster", "", "the local cluster's DIR (deploy/local-cluster/cluster.sh start DIR); required")
		script := fs.String("cluster-script", "", "cluster.sh (default: CLUSTER_SCRIPT of DIR/cluster.env)")
		rooms := fs.Int("rooms", 50, "rooms")
		members := fs.Int("members", 5, "members per room, one client each")
		rate := fs.Float64("rate", 200, "messages per second, all senders together")
		faults := fs.String("faults", defaultFaults, "comma-separated faults, one step each, in order: kill:NAME, pause:NAME, store "+
			"(NAME: a process of the cluster, or nats-leader / nats-follower of CHAT_MSG)")
		rounds := fs.Int("rounds", 1, "run the list of faults this many times")
		before := fs.Duration("before", 20*time.Second, "load before each fault")
		after := fs.Duration("after", 40*time.Second, "load after each fault is lifted")
		down := fs.Duration("down", 5*time.Second, "how long a killed process stays down before its restart")
		pause := fs.Duration("pause", 20*time.Second, "how long a paused process stays stopped")
		outage := fs.Duration("outage", 150*time.Second, "how long the store stays down (longer than JetStream's 2-minute dedup window by default)")
		return func() (Design, error) {
			if err := positive(map[string]int{"rooms": *rooms, "members": *members, "rounds": *rounds}); err != nil {
				return Design{}, err
			}
			if *rate <= 0 || *before <= 0 || *after <= 0 || *down < 0 || *pause < 0 || *outage < 0 {
				return Design{}, fmt.Errorf("--rate, --before and --after must be positive, --down, --pause and --outage not negative")
			}
			if *cluster == "" {
				return Design{}, fmt.Errorf("--cluster DIR is required: the DIR of deploy/local-cluster/cluster.sh start")
			}
			ctl, err := openCluster(*cluster, *script)
			if err != nil {
				return Design{}, err
			}
			holds := map[string]time.Duration{faultKill: *down, faultPause: *pause, faultStore: *outage}
			list, err := parseFaults(*faults, holds, *before, ctl)
			if err != nil {
				return Design{}, err
			}
			d := Design{
				Params: map[string]any{
					"cluster": ctl.dir, "rooms": *rooms, "members": *members, "rate": *rate, "faults": *faults, "rounds": *rounds,
					"before": before.String(), "after": after.String(), "down": down.String(), "pause": pause.String(), "outage": outage.String(),
				},
				VerifySteps: true,
				Archive:     true,
				Findings:    chaosFindings,
			}
			for r := range *rooms {
				for range *members {
					d.Clients = append(d.Clients, Client{Rooms: []int{r}})
				}
			}
			senders := shuffled(d.memberSlots())
			// Sends are retried across the longest fault, so a client rides
			// out the store outage as a real one would.
			retry := 2*time.Minute + max(*down, *pause, *outage) + startAllowance(faultStore, "")
			for range *rounds {
				for _, f := range list {
					st := step(*rate, f.Before+f.Hold+startAllowance(f.Kind, f.Target)+*after, senders)
					st.Name, st.Fault, st.RetryFor = f.Name(), f, retry
					d.Steps = append(d.Steps, st)
				}
			}
			return d, nil
		}
	},
}

// parseFaults reads a --faults list.
func parseFaults(list string, holds map[string]time.Duration, before time.Duration, ctl cluster) ([]*Fault, error) {
	var out []*Fault
	for _, item := range strings.Split(list, ",") {
		kind, target, _ := strings.Cut(strings.TrimSpace(item), ":")
		switch {
		case kind == faultStore && target == "":
		case (kind == faultKill || kind == faultPause) && target != "":
			if err := ctl.check(target); err != nil {
				return nil, fmt.Errorf("--faults %q: %w", item, err)
			}
		default:
			return nil, fmt.Errorf("--faults %q: want kill:NAME, pause:NAME or store", item)
		}
		out = append(out, &Fault{Kind: kind, Target: target, Before: before, Hold: holds[kind], ctl: ctl})
	}
	return out, nil
}

// Fault is one fault of the chaos scenario, injected into a local cluster
// during a step.
type Fault struct {
	Kind   string        // faultKill, faultPause or faultStore
	Target string        // a process of the cluster, or natsLeader / natsFollower; none for the store
	Before time.Duration // load before it
	Hold   time.Duration // down, paused, or out
	ctl    cluster
}

// Name describes the fault for people.
func (f *Fault) Name() string {
	switch f.Kind {
	case faultKill:
		return "kill -9 " + f.Target
	case faultPause:
		return fmt.Sprintf("pause %s %v", f.Target, f.Hold)
	}
	return fmt.Sprintf("store outage %v", f.Hold)
}

// FaultRun is what one fault did.
type FaultRun struct {
	Process string    // the process it hit
	Start   time.Time // when it was injected
	Lifted  time.Time // when the process was back: restarted and ready, or resumed
	Err     string    // why it could not be injected or lifted
}

// recoveryFrom is when recovery is counted from: the kill itself for a
// killed process (others take over its work), the lifting for a pause or
// an outage (nothing can until then).
func (f *Fault) recoveryFrom(r FaultRun) time.Time {
	if f.Kind == faultKill {
		return r.Start
	}
	return r.Lifted
}

// inject waits until f.Before after start, then injects the fault and
// lifts it. Lifting (restart, resume) survives the end of ctx, so an
// interrupted run leaves the cluster whole.
func (f *Fault) inject(ctx context.Context, env Env, start time.Time, logf func(string, ...any)) FaultRun {
	var run FaultRun
	if !load.Sleep(ctx, time.Until(start.Add(f.Before))) {
		run.Err = "interrupted before the fault"
		return run
	}
	var err error
	if run.Process, err = f.resolve(ctx, env.NATSURL); err != nil {
		run.Err = err.Error()
		return run
	}
	stop, lift := "kill", "restart"
	switch f.Kind {
	case faultPause:
		stop, lift = "pause", "resume"
	case faultStore:
		stop = "stop"
	}
	logf("fault: %s %s", stop, run.Process)
	run.Start = time.Now()
	if err := f.ctl.do(ctx, stop, run.Process); err != nil {
		run.Err = err.Error()
		return run
	}
	load.Sleep(ctx, f.Hold)
	err = f.ctl.do(context.WithoutCancel(ctx), lift, run.Process)
	run.Lifted = time.Now()
	if err != nil {
		run.Err = err.Error()
	}
	logf("fault: %s %s done after %v", lift, run.Process, run.Lifted.Sub(run.Start).Round(time.Millisecond))
	return run
}

// resolve names the process the fault hits.
func (f *Fault) resolve(ctx context.Context, natsURL string) (string, error) {
	switch f.Target {
	case natsLeader, natsFollower:
		leader, followers, err := chatMsgPeers(ctx, natsURL)
		if err != nil {
			return "", err
		}
		if f.Target == natsLeader {
			return leader, nil
		}
		if len(followers) == 0 {
			return "", fmt.Errorf("%s has no current follower", bus.StreamMsg)
		}
		return followers[0], nil
	case "":
		return "cassandra", nil
	}
	return f.Target, nil
}

// chatMsgPeers returns the processes of the NATS servers leading and
// following CHAT_MSG (the current followers only). cluster.sh names server
// i n<i> and its process nats-<i>.
func chatMsgPeers(ctx context.Context, natsURL string) (leader string, followers []string, err error) {
	if natsURL == "" {
		return "", nil, errors.New("no --nats-url to find CHAT_MSG's leader with")
	}
	nc, err := nats.Connect(natsURL, nats.Name("parley-bench-chaos"))
	if err != nil {
		return "", nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamMsg)
	if err != nil {
		return "", nil, fmt.Errorf("stream %s: %w", bus.StreamMsg, err)
	}
	c := s.CachedInfo().Cluster
	if c == nil || c.Leader == "" {
		return "", nil, fmt.Errorf("stream %s has no cluster leader: not a clustered NATS", bus.StreamMsg)
	}
	process := func(server string) string { return "nats-" + strings.TrimPrefix(server, "n") }
	for _, p := range c.Replicas {
		if p.Current && !p.Offline {
			followers = append(followers, process(p.Name))
		}
	}
	return process(c.Leader), followers, nil
}

// cluster drives a local cluster through its script.
type cluster struct {
	script, dir string
	names       map[string]bool // its processes (DIR/names)
}

// openCluster reads DIR's process names and, unless given, the script from
// DIR/cluster.env.
func openCluster(dir, script string) (cluster, error) {
	c := cluster{dir: dir, script: script, names: map[string]bool{}}
	names, err := os.ReadFile(filepath.Join(dir, "names"))
	if err != nil {
		return c, fmt.Errorf("--cluster %s holds no cluster: %w", dir, err)
	}
	for _, n := range strings.Fields(string(names)) {
		c.names[n] = true
	}
	if c.script == "" {
		env, err := ReadClusterEnv(filepath.Join(dir, "cluster.env"))
		if err != nil {
			return c, err
		}
		if c.script = env["CLUSTER_SCRIPT"]; c.script == "" {
			return c, fmt.Errorf("%s/cluster.env names no CLUSTER_SCRIPT: give --cluster-script", dir)
		}
	}
	return c, nil
}

// ReadClusterEnv reads the plain KEY=VALUE lines of a local cluster's
// cluster.env (values unquoted).
func ReadClusterEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
			out[k] = v
		}
	}
	return out, sc.Err()
}

// check refuses a target the cluster does not have.
func (c cluster) check(target string) error {
	if target == natsLeader || target == natsFollower || c.names[target] {
		return nil
	}
	return fmt.Errorf("the cluster in %s has no process %s", c.dir, target)
}

// do runs `cluster.sh CMD DIR NAME`.
func (c cluster) do(ctx context.Context, cmd, name string) error {
	out, err := exec.CommandContext(ctx, c.script, cmd, c.dir, name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cluster.sh %s %s: %v: %s", cmd, name, err, lastLines(string(out), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}
