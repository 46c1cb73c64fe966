package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/gateway"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/natsembed"
	"github.com/parley-chat/parley/internal/store/pebblestore"
	"github.com/parley-chat/parley/internal/store/scyllastore"
	"github.com/parley-chat/parley/internal/store/scyllastore/scyllatest"
	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
	"github.com/parley-chat/parley/processor"
)

const testPartitions = 8

// testConfig is a whole node on an embedded NATS server with random ports,
// a Pebble store in dir, and short failover timings.
func testConfig(t *testing.T, dir string) node.Config { return testConfigOn(t, pebble, dir) }

// testConfigOn is testConfig with the store on b. A node restarted from the
// returned config reopens the same store.
func testConfigOn(t *testing.T, b backend, dir string) node.Config {
	log := zaptest.NewLogger(t).Named(filepath.Base(dir))
	return node.Config{
		Roles:     node.Roles{Gateway: true, Processor: true, Archiver: true},
		DataDir:   dir,
		Embedded:  true,
		NATS:      natsembed.Config{Name: "test", Port: -1, StoreDir: filepath.Join(dir, "nats")},
		Streams:   bus.StreamConfig{Partitions: testPartitions},
		OpenStore: b.opener(t, dir, log),
		HTTPAddr:  "127.0.0.1:0",
		Gateway: gateway.Config{
			DevTokens: true,
			Transport: os.Getenv("PARLEY_WS_TRANSPORT"), // "": the platform default
			// Tests send as fast as they can; limits have their own test.
			Limits: gateway.RateLimits{SendRate: -1, RequestRate: -1},
		},
		Processor: processor.Config{LeaseTTL: 5 * time.Second},
	}
}

// backend is a store the end-to-end tests run on.
type backend string

const (
	pebble backend = "pebble"
	scylla backend = "scylla" // a Cassandra or ScyllaDB node, see scyllatest
)

// testBackends are the backends named in PARLEY_TEST_STORES (comma
// separated), by default all of them.
func testBackends(t *testing.T) []backend {
	env := os.Getenv("PARLEY_TEST_STORES")
	if env == "" {
		return []backend{pebble, scylla}
	}
	var out []backend
	for name := range strings.SplitSeq(env, ",") {
		b := backend(strings.TrimSpace(name))
		if b != pebble && b != scylla {
			t.Fatalf("PARLEY_TEST_STORES=%s: unknown store %q (want pebble, scylla)", env, b)
		}
		out = append(out, b)
	}
	return out
}

// forEachBackend runs test once per backend in PARLEY_TEST_STORES, as
// subtests named after them. A scylla subtest skips when no node answers,
// and fails instead where one is required (CI).
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range testBackends(t) {
		t.Run(string(b), func(t *testing.T) { test(t, b) })
	}
}

// opener returns the OpenStore of a node keeping its files under dir. The
// store is new and empty: Pebble under dir, or on scylla a keyspace made
// here and dropped when t ends (after the node has closed it).
func (b backend) opener(t *testing.T, dir string, log *zap.Logger) func(context.Context) (store.Store, error) {
	if b == scylla {
		cfg := scyllatest.Keyspace(t)
		return func(ctx context.Context) (store.Store, error) { return scyllastore.Open(ctx, cfg, log.Named("scylla")) }
	}
	return func(context.Context) (store.Store, error) {
		return pebblestore.Open(filepath.Join(dir, "store"), log.Named("pebble"))
	}
}

func startNode(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(n.Close) })
	return n
}

// api calls the node's HTTP API and decodes a JSON answer into out.
func api(t *testing.T, n *node.Node, method, path, token string, body, out any) int {
	t.Helper()
	return callAPI(t, http.DefaultClient, "http://"+n.HTTPAddr(), method, path, token, body, out).StatusCode
}

// callAPI calls the API at base (scheme://host:port) with hc and decodes a
// JSON answer into out. The response's body is read and closed.
func callAPI(t *testing.T, hc *http.Client, base, method, path, token string, body, out any) *http.Response {
	t.Helper()
	var buf bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&buf).Encode(body)
	}
	req, _ := http.NewRequest(method, base+path, &buf)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp
}

func devToken(t *testing.T, n *node.Node, user string) string {
	t.Helper()
	var r struct{ Token string }
	if code := api(t, n, "POST", "/api/v1/dev/tokens", "", map[string]string{"user": user}, &r); code != 200 {
		t.Fatalf("dev token for %s: HTTP %d", user, code)
	}
	return r.Token
}

// createRoom makes a group owned by owner with the other users as members.
func createRoom(t *testing.T, n *node.Node, owner string, members ...string) string {
	t.Helper()
	var r struct{ ID string }
	code := api(t, n, "POST", "/api/v1/rooms", devToken(t, n, owner), map[string]any{"name": "test", "members": members}, &r)
	if code != 201 || r.ID == "" {
		t.Fatalf("create room: HTTP %d", code)
	}
	return r.ID
}

func wsURL(n *node.Node) string { return "ws://" + n.HTTPAddr() + "/ws" }

func dial(t *testing.T, n *node.Node, user string, sub string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, wsURL(n), client.Options{Subprotocol: sub, Token: devToken(t, n, user)})
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// collect reads n message events from c, failing on timeout or anything
// other than a message.
func collect(t *testing.T, c *client.Client, n int, timeout time.Duration) []*pb.Message {
	t.Helper()
	out := make([]*pb.Message, 0, n)
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case f, ok := <-c.Events():
			if !ok {
				t.Fatalf("connection closed after %d of %d messages: %v", len(out), n, c.Err())
			}
			m := f.GetMessage()
			if m == nil {
				t.Fatalf("unexpected event %v", f)
			}
			out = append(out, m)
		case <-deadline:
			t.Fatalf("got %d of %d messages in %v", len(out), n, timeout)
		}
	}
	return out
}

// expectQuiet fails if c receives any event within d.
func expectQuiet(t *testing.T, c *client.Client, d time.Duration) {
	t.Helper()
	select {
	case f := <-c.Events():
		t.Fatalf("unexpected event: %v", f)
	case <-time.After(d):
	}
}

// checkDense asserts msgs have seqs first, first+1, ... in order.
func checkDense(t *testing.T, msgs []*pb.Message, first uint64) {
	t.Helper()
	for i, m := range msgs {
		if want := first + uint64(i); m.Seq != want {
			t.Fatalf("message %d has seq %d, want %d", i, m.Seq, want)
		}
	}
}

// sendN sends count messages with ids prefix-0.. and returns the acks.
func sendN(t *testing.T, c *client.Client, room, prefix string, count int) []*pb.SendAck {
	t.Helper()
	acks := make([]*pb.SendAck, count)
	for i := range acks {
		ack, err := c.Send(ctxT(t, 30*time.Second), room, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("%s message %d", prefix, i))
		if err != nil {
			t.Fatalf("send %s-%d: %v", prefix, i, err)
		}
		acks[i] = ack
	}
	return acks
}

// waitArchived waits until the history store holds seq 1..head of room.
func waitArchived(t *testing.T, n *node.Node, room string, head uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := n.Store().HistoryHead(context.Background(), room)
		if err == nil && h >= head {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("history head of %s is %d, want %d (err %v)", room, h, head, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var subprotocols = []string{protocol.SubprotocolProto, protocol.SubprotocolJSON}
