// Package cli is `parley-bench`: it parses a scenario's command line, runs
// the scenario against a Parley server on this machine, writes the report
// under bench/results/<scenario>-<date>/, and serves `parley-bench worker`,
// the worker processes the run spawns.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/bench/compare"
	"github.com/parley-chat/parley/bench/coord"
	"github.com/parley-chat/parley/bench/report"
	"github.com/parley-chat/parley/bench/scenario"
)

// WorkerCommand is the argument that makes `parley-bench` a worker.
const WorkerCommand = "worker"

// Main runs `parley-bench` with its args. workerArgv
// starts this program as a worker: the binary, then "worker".
func Main(ctx context.Context, args, workerArgv []string) error {
	if len(args) == 0 {
		usage(os.Stderr)
		return errors.New("bench: name a scenario")
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		usage(os.Stderr)
		return flag.ErrHelp
	}
	switch args[0] {
	case WorkerCommand:
		return coord.Serve(ctx, os.Stdin, os.Stdout)
	case compare.Command:
		return compare.Main(args[1:])
	}
	sc, ok := scenario.Lookup(args[0])
	if !ok {
		usage(os.Stderr)
		return fmt.Errorf("bench: unknown scenario %q", args[0])
	}
	fs := flag.NewFlagSet("parley-bench "+sc.Name, flag.ContinueOnError)
	var o options
	o.bind(fs)
	design := sc.Bind(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: parley-bench %s [flags]\n\n%s.\n\nflags:\n", sc.Name, sc.Summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench %s: unexpected arguments %q", sc.Name, fs.Args())
	}
	d, err := design()
	if err != nil {
		return fmt.Errorf("bench %s: %w", sc.Name, err)
	}
	env, err := o.env(ctx, workerArgv)
	if err != nil {
		return fmt.Errorf("bench %s: %w", sc.Name, err)
	}
	out, err := scenario.Run(ctx, env, sc.Name, d)
	if err != nil {
		return fmt.Errorf("bench %s: %w", sc.Name, err)
	}
	dir := report.Dir(o.out, sc.Name, out.Result.Start)
	if err := report.Write(dir, out.Result); err != nil {
		return err
	}
	if err := scenario.WriteFindings(dir, out.Findings); err != nil {
		return err
	}
	printOutcome(os.Stdout, dir, out)
	if v := out.Result.Run.Verify; v != nil && !v.Clean() {
		return fmt.Errorf("bench %s: delivery anomalies: %d lost, %d duplicated, %d reordered, %d stored twice, %d gaps, %d silent (see %s)",
			sc.Name, v.Lost, v.Duplicated, v.Reordered, v.StoredTwice, v.Gaps, v.Silent, dir)
	}
	if f := out.Findings.Failures; len(f) > 0 {
		return fmt.Errorf("bench %s: %d checks failed, the first: %s (see %s)", sc.Name, len(f), f[0], dir)
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: parley-bench <scenario> [flags]   (`parley-bench <scenario> -h` lists its flags)\n\nscenarios:\n")
	for _, s := range scenario.All {
		fmt.Fprintf(w, "  %-10s %s\n", s.Name, s.Summary)
	}
	fmt.Fprintf(w, "\n`parley-bench compare DIR [BASE OTHER]` puts two sets of result folders side by side (`-h` for more).\n")
	fmt.Fprintf(w, "bench/README.md describes each scenario and its figures.\n")
}

// options are the flags every scenario shares.
type options struct {
	urls, natsURL, pids, out string
	metricsURLs, apiURL      string
	workers, perWorker       int
	bodySize, eventBuffer    int
	dial, inFlight           int
	baseline, window         int
	wait                     time.Duration
	progress                 bool
}

func (o *options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.urls, "url", "ws://127.0.0.1:8080/ws", "gateway WebSocket URLs, comma-separated; clients are spread over them (loopback only)")
	fs.StringVar(&o.natsURL, "nats-url", "nats://127.0.0.1:4222", "the server's NATS, comma-separated for a cluster's servers, for the raw JetStream baseline and the backlog check (loopback only; empty: neither)")
	fs.StringVar(&o.metricsURLs, "metrics-url", "", "Prometheus endpoints of the server processes, comma-separated, each scraped and summed: "+
		"one per process when several share a port (their --debug-addr) (default: /metrics of each --url)")
	fs.StringVar(&o.apiURL, "api-url", "", "HTTP API for the setup (tokens, rooms), e.g. a gateway that is not measured (default: the first --url's host)")
	fs.StringVar(&o.pids, "server-pid", "", "server PIDs to sample, comma-separated (default: the processes listening on the gateway ports)")
	fs.StringVar(&o.out, "out", report.DefaultRoot, "directory for result folders")
	fs.IntVar(&o.workers, "workers", 0, "worker processes (default: enough for --per-worker)")
	fs.IntVar(&o.perWorker, "per-worker", 15000, "clients per worker process; a process may hold at most ~19,000 sockets here")
	fs.IntVar(&o.bodySize, "size", 100, "message body size in bytes")
	fs.IntVar(&o.eventBuffer, "event-buffer", 1024, "pushed frames each connection buffers unread")
	fs.IntVar(&o.dial, "dial-concurrency", 200, "connection attempts in flight per worker")
	fs.IntVar(&o.inFlight, "max-in-flight", 20000, "requests awaiting answers per worker")
	fs.IntVar(&o.baseline, "baseline", 100000, "messages of the raw JetStream baseline (0: none)")
	fs.IntVar(&o.window, "baseline-window", 1000, "baseline publishes in flight")
	fs.DurationVar(&o.wait, "wait", 0, "wait this long for the server's /healthz before starting")
	fs.BoolVar(&o.progress, "progress", true, "print a live progress line")
}

// env checks the targets and finds the server processes.
func (o *options) env(ctx context.Context, workerArgv []string) (scenario.Env, error) {
	env := scenario.Env{
		Spawn:           coord.Exec(workerArgv),
		Workers:         o.workers,
		PerWorker:       max(o.perWorker, 1),
		BodySize:        o.bodySize,
		EventBuffer:     o.eventBuffer,
		DialConcurrency: o.dial,
		MaxInFlight:     o.inFlight,
		Baseline:        o.baseline,
		BaselineWindow:  o.window,
		Progress:        o.progress,
		Log:             os.Stderr,
	}
	var ports []int
	for _, raw := range strings.Split(o.urls, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
			return env, fmt.Errorf("--url %q: want ws://host:port/ws", raw)
		}
		port, err := loopbackPort(u.Host)
		if err != nil {
			return env, fmt.Errorf("--url %q: %w", raw, err)
		}
		env.URLs = append(env.URLs, u.String())
		if m := "http://" + u.Host + "/metrics"; !slices.Contains(env.Metrics, m) {
			env.Metrics = append(env.Metrics, m)
		}
		ports = append(ports, port)
	}
	env.API = "http://" + mustHost(env.URLs[0])
	if o.metricsURLs != "" {
		env.Metrics = nil
		for _, raw := range strings.Split(o.metricsURLs, ",") {
			u, err := httpLoopback(raw)
			if err != nil {
				return env, fmt.Errorf("--metrics-url %q: %w", raw, err)
			}
			env.Metrics = append(env.Metrics, u)
		}
	}
	if o.apiURL != "" {
		u, err := httpLoopback(o.apiURL)
		if err != nil {
			return env, fmt.Errorf("--api-url %q: %w", o.apiURL, err)
		}
		env.API = strings.TrimSuffix(u, "/")
	}
	if o.natsURL != "" {
		urls, err := natsLoopback(o.natsURL)
		if err != nil {
			return env, fmt.Errorf("--nats-url %q: %w", o.natsURL, err)
		}
		env.NATSURL = urls
	}
	if o.wait > 0 {
		if err := waitHealthy(ctx, "http://"+mustHost(env.URLs[0])+"/healthz", o.wait); err != nil {
			return env, err
		}
	}
	pids, err := o.serverPIDs(ports)
	if err != nil {
		return env, err
	}
	if len(pids) == 0 {
		fmt.Fprintln(os.Stderr, "bench: no server process found listening on the gateway ports; the server is not sampled (set --server-pid)")
	}
	env.ServerPIDs = pids
	return env, nil
}

// serverPIDs returns --server-pid, or the listeners of ports.
func (o *options) serverPIDs(ports []int) ([]int, error) {
	var pids []int
	if o.pids != "" {
		for _, f := range strings.Split(o.pids, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return nil, fmt.Errorf("--server-pid: %q is not a PID", f)
			}
			pids = append(pids, pid)
		}
		return pids, nil
	}
	seen := map[int]bool{}
	for _, port := range ports {
		found, err := listeners(port)
		if err != nil {
			return nil, err
		}
		for _, pid := range found {
			if !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// loopbackPort checks that hostport names this machine, refusing anything
// else: the bench generates load only against loopback.
func loopbackPort(hostport string) (int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return 0, fmt.Errorf("bad port %q", p)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0, fmt.Errorf("%s is not a loopback address; the bench only targets this machine", host)
	}
	return port, nil
}

// httpLoopback checks an http:// URL on this machine and returns it
// trimmed.
func httpLoopback(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" {
		return "", errors.New("want http://host:port/…")
	}
	if _, err := loopbackPort(u.Host); err != nil {
		return "", err
	}
	return raw, nil
}

// natsLoopback checks a comma-separated list of NATS servers on this
// machine and returns it trimmed, as nats.Connect takes it.
func natsLoopback(list string) (string, error) {
	var urls []string
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err == nil {
			_, err = loopbackPort(u.Host)
		}
		if err != nil {
			return "", fmt.Errorf("%q: %w", raw, err)
		}
		urls = append(urls, raw)
	}
	return strings.Join(urls, ","), nil
}

func mustHost(raw string) string {
	u, _ := url.Parse(raw) // parsed before
	return u.Host
}

// waitHealthy polls url until it answers 200, at most limit.
func waitHealthy(ctx context.Context, url string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server not healthy within %v: %s: %w", limit, url, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printOutcome prints where the results are and the headline figures.
func printOutcome(w io.Writer, dir string, o *scenario.Outcome) {
	fmt.Fprintf(w, "\n%s/summary.md\n", dir)
	if v := o.Result.Run.Verify; v != nil {
		fmt.Fprintf(w, "  verification: %d sent, %d acked, %d delivered; lost %d, duplicated %d, reordered %d, stored twice %d, gaps %d\n",
			v.Sent, v.Acked, v.Delivered, v.Lost, v.Duplicated, v.Reordered, v.StoredTwice, v.Gaps)
	}
	if l := o.Result.Run.Latency.SendDeliver; l.Count > 0 {
		fmt.Fprintf(w, "  send→deliver: p50 %v, p99 %v, max %v\n", l.P50, l.P99, l.Max)
	}
	for _, n := range o.Findings.Failures {
		fmt.Fprintf(w, "  FAILED: %s\n", n)
	}
	for _, n := range o.Findings.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, f := range o.Findings.Figures {
		fmt.Fprintf(w, "  %s: %s\n", f.Name, f.Text())
	}
}
