// Command idlebench measures what an idle client connection costs a
// gateway, per transport: it starts `parley dev` with --ws-transport=T,
// opens N connections that authenticate and subscribe to 3 rooms, waits
// for the garbage collector, and reports the growth of the process's RSS,
// Go heap and stacks divided by N, with the ratio goroutine / epoll.
//
//	go build -o bin/parley ./cmd/parley
//	go run ./gateway/reactor/idlebench -bin bin/parley -n 15000
//
// One process holds at most ~19k sockets here (open-files hard limit
// 20,000), so N stays below that; connections are dialed from several
// loopback source addresses.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parley-chat/parley/pkg/client"
	"github.com/parley-chat/parley/pkg/protocol"
)

func main() {
	bin := flag.String("bin", "bin/parley", "parley binary")
	n := flag.Int("n", 15000, "idle connections per transport")
	transports := flag.String("transports", "epoll,goroutine", "transports to measure")
	sources := flag.Int("sources", 4, "loopback source addresses to dial from (127.0.0.2, ...)")
	settle := flag.Duration("settle", 130*time.Second, "wait after connecting; covers the runtime's forced GC (every 2 minutes)")
	flag.Parse()

	results := make(map[string]sample)
	names := strings.Split(*transports, ",")
	for _, tr := range names {
		r, err := measure(*bin, tr, *n, *sources, *settle)
		if err != nil {
			fmt.Fprintf(os.Stderr, "idlebench: %s: %v\n", tr, err)
			os.Exit(1)
		}
		results[tr] = r
	}
	fmt.Printf("\n%d idle connections, each authenticated and subscribed to 3 rooms (parley.v1.proto)\n\n", *n)
	fmt.Println("| per connection | " + strings.Join(names, " | ") + " |")
	fmt.Println("|---" + strings.Repeat("|---:", len(names)) + "|")
	row := func(label string, f func(sample) float64, unit string) {
		cells := []string{label}
		for _, tr := range names {
			cells = append(cells, fmt.Sprintf("%.0f %s", f(results[tr]), unit))
		}
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}
	per := func(f func(sample) float64) func(sample) float64 {
		return func(s sample) float64 { return f(s) / float64(*n) }
	}
	row("RSS", per(func(s sample) float64 { return s.rss }), "B")
	row("Go heap in use", per(func(s sample) float64 { return s.heap }), "B")
	row("goroutine stacks", per(func(s sample) float64 { return s.stack }), "B")
	row("heap + stacks", per(func(s sample) float64 { return s.heap + s.stack }), "B")
	row("goroutines", per(func(s sample) float64 { return s.goroutines }), "")
	if a, b := results["goroutine"], results["epoll"]; a.rss > 0 && b.rss > 0 {
		fmt.Printf("\nratio goroutine / epoll: RSS %.1fx, heap %.1fx, heap + stacks %.1fx\n",
			a.rss/b.rss, a.heap/b.heap, (a.heap+a.stack)/(b.heap+b.stack))
	}
}

// sample is what /metrics reports; measure returns the growth of each.
type sample struct {
	rss, heap, stack, goroutines, conns float64
}

func (s sample) minus(b sample) sample {
	return sample{s.rss - b.rss, s.heap - b.heap, s.stack - b.stack, s.goroutines - b.goroutines, s.conns - b.conns}
}

func measure(bin, transport string, n, sources int, settle time.Duration) (sample, error) {
	dir, err := os.MkdirTemp("", "idlebench-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(dir)
	addr := "127.0.0.1:" + strconv.Itoa(freePort())
	cmd := exec.Command(bin, "dev", "--data-dir", dir, "--http-addr", addr,
		"--nats-port", strconv.Itoa(freePort()), "--nats-http-port", "0",
		"--log-level", "error", "--ws-transport", transport, "--drain-time", "0s")
	logf, _ := os.Create(filepath.Join(dir, "parley.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	base := "http://" + addr
	if err := waitHealthy(base); err != nil {
		return sample{}, err
	}

	users := make([]string, 100)
	tokens := make([]string, len(users))
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
		if tokens[i], err = token(base, users[i]); err != nil {
			return sample{}, err
		}
	}
	owner, err := token(base, "owner")
	if err != nil {
		return sample{}, err
	}
	rooms := make([]string, 3)
	for i := range rooms {
		var r struct{ ID string }
		if err := post(base+"/api/v1/rooms", owner, map[string]any{"name": "idle", "members": users}, &r); err != nil {
			return sample{}, err
		}
		rooms[i] = r.ID
	}

	// Warm up (room hubs, pools), then take the baseline.
	warm, err := connect(base, tokens, rooms, 64, sources)
	if err != nil {
		return sample{}, err
	}
	time.Sleep(2 * time.Second)
	before, err := scrape(base)
	if err != nil {
		return sample{}, err
	}
	start := time.Now()
	conns, err := connect(base, tokens, rooms, n, sources)
	if err != nil {
		return sample{}, err
	}
	fmt.Fprintf(os.Stderr, "%s: %d connections in %v; settling %v\n", transport, len(conns), time.Since(start).Round(time.Millisecond), settle)
	time.Sleep(settle)
	after, err := scrape(base)
	if err != nil {
		return sample{}, err
	}
	for _, c := range append(conns, warm...) {
		select {
		case <-c.Done():
			return sample{}, fmt.Errorf("a connection ended while idle: %v", c.Err())
		default:
		}
	}
	if got := after.conns - before.conns; got != float64(n) {
		return sample{}, fmt.Errorf("gateway counts %v new connections, want %d", got, n)
	}
	for _, c := range append(conns, warm...) {
		_ = c.Abort()
	}
	return after.minus(before), nil
}

// connect opens n connections, each authenticated as one of the users and
// subscribed to every room, dialing from 127.0.0.2 onwards.
func connect(base string, tokens, rooms []string, n, sources int) ([]*client.Client, error) {
	url := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	conns := make([]*client.Client, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c, err := client.Dial(ctx, url, client.Options{
					Subprotocol: protocol.SubprotocolProto,
					Token:       tokens[i%len(tokens)],
					LocalAddr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%sources))},
					EventBuffer: 16,
				})
				for _, room := range rooms {
					if err == nil {
						_, err = c.Subscribe(ctx, room, nil)
					}
				}
				cancel()
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return conns, nil
}

// scrape reads the gauges idlebench needs from /metrics.
func scrape(base string) (sample, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return sample{}, err
	}
	defer resp.Body.Close()
	vals := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, v, ok := strings.Cut(sc.Text(), " "); ok && !strings.HasPrefix(name, "#") {
			vals[name], _ = strconv.ParseFloat(v, 64)
		}
	}
	s := sample{
		rss:        vals["process_resident_memory_bytes"],
		heap:       vals["go_memstats_heap_inuse_bytes"],
		stack:      vals["go_memstats_stack_inuse_bytes"],
		goroutines: vals["go_goroutines"],
		conns:      vals["parley_gateway_connections"],
	}
	if s.rss == 0 || s.heap == 0 {
		return s, errors.New("/metrics lacks process_resident_memory_bytes or go_memstats_heap_inuse_bytes")
	}
	return s, sc.Err()
}

func waitHealthy(base string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("parley dev not healthy in 60s")
}

func token(base, user string) (string, error) {
	var r struct{ Token string }
	err := post(base+"/api/v1/dev/tokens", "", map[string]string{"user": user}, &r)
	return r.Token, err
}

func post(url, bearer string, body, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
