package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/gateway"
	"github.com/parley-chat/parley/pkg/bus"
	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
	"github.com/parley-chat/parley/pkg/store/pebblestore"
	"github.com/parley-chat/parley/processor"
)

const testPartitions = 8

// testConfig is a whole node on an embedded NATS server with random ports,
// a Pebble store in dir, and short failover timings.
func testConfig(t *testing.T, dir string) node.Config {
	log := zaptest.NewLogger(t).Named(filepath.Base(dir))
	return node.Config{
		Roles:    node.Roles{Gateway: true, Processor: true, Archiver: true},
		DataDir:  dir,
		Embedded: true,
		NATS:     bus.EmbeddedConfig{Name: "test", Port: -1, StoreDir: filepath.Join(dir, "nats")},
		Streams:  bus.StreamConfig{Partitions: testPartitions},
		OpenStore: func(context.Context) (store.Store, error) {
			return pebblestore.Open(filepath.Join(dir, "store"), log.Named("pebble"))
		},
		HTTPAddr:  "127.0.0.1:0",
		Gateway:   gateway.Config{DevTokens: true},
		Processor: processor.Config{PinnedTTL: 2 * time.Second, AckWait: 2 * time.Second},
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
	var buf bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&buf).Encode(body)
	}
	req, _ := http.NewRequest(method, "http://"+n.HTTPAddr()+path, &buf)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
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
