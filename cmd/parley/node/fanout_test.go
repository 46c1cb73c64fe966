package node_test

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/parley-chat/parley/cmd/parley/node"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// joinRaw opens a bare parley.v1.proto connection, authenticates it and
// subscribes it to room; what it reads next are the room's messages.
func joinRaw(t *testing.T, n *node.Node, token, room string, nd *net.Dialer) net.Conn {
	t.Helper()
	d := ws.Dialer{Protocols: []string{protocol.SubprotocolProto}}
	if nd != nil {
		d.NetDial = nd.DialContext
	}
	conn, _, _, err := d.Dial(ctxT(t, 10*time.Second), wsURL(n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for _, f := range []*pb.ClientFrame{
		{Id: 1, Kind: &pb.ClientFrame_Auth{Auth: &pb.Authenticate{Token: token}}},
		{Id: 2, Kind: &pb.ClientFrame_Subscribe{Subscribe: &pb.Subscribe{Room: room}}},
	} {
		data, _ := protocol.Proto.EncodeClient(f)
		if err := wsutil.WriteClientBinary(conn, data); err != nil {
			t.Fatal(err)
		}
		reply, _, err := wsutil.ReadServerData(conn)
		var sf pb.ServerFrame
		if err == nil {
			err = protocol.Proto.DecodeServer(reply, &sf)
		}
		if err != nil || sf.GetError() != nil {
			t.Fatalf("request %d: %v %v", f.Id, err, sf.GetError())
		}
	}
	return conn
}

// One member of a 1,000-member room stops reading. Its send queue fills
// (a second room sends it large messages, so that it fills within a short
// test: loopback socket buffers hold megabytes) and it is closed with 1008;
// the 999 others get every message, and the time from send to delivery
// stays that of a healthy room.
func TestSlowMemberDoesNotDelayTheRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	cfg := testConfig(t, t.TempDir())
	cfg.Gateway.SendQueue = 16
	cfg.Gateway.WriteTimeout = time.Minute // the slow member reads its close frame at the end
	n := startNode(t, cfg)
	const members, messages = 1000, 300
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"}
	room := createRoom(t, n, "alice", append(users, "slow")...)
	bulk := createRoom(t, n, "alice", "slow")
	tokens := make(map[string]string)
	for _, u := range append(users, "slow") {
		tokens[u] = devToken(t, n, u)
	}

	// Each healthy member notes when each message arrives, by seq.
	arrivals := make([][]time.Time, members-1)
	done := make(chan error, members-1)
	for i := range arrivals {
		conn := joinRaw(t, n, tokens[users[i%len(users)]], room, nil)
		go func() {
			for len(arrivals[i]) < messages {
				data, _, err := wsutil.ReadServerData(conn)
				var f pb.ServerFrame
				if err == nil {
					err = protocol.Proto.DecodeServer(data, &f)
				}
				if err != nil {
					done <- fmt.Errorf("member %d after %d messages: %w", i, len(arrivals[i]), err)
					return
				}
				if m := f.GetMessage(); m != nil && m.Room == room {
					if m.Seq != uint64(len(arrivals[i])+1) {
						done <- fmt.Errorf("member %d got seq %d after %d", i, m.Seq, len(arrivals[i]))
						return
					}
					arrivals[i] = append(arrivals[i], time.Now())
				}
			}
			done <- nil
		}()
	}
	// The slow member's socket buffers are small and it never reads.
	slow := joinRaw(t, n, tokens["slow"], room, &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}})
	subscribe := &pb.ClientFrame{Id: 3, Kind: &pb.ClientFrame_Subscribe{Subscribe: &pb.Subscribe{Room: bulk}}}
	if data, _ := protocol.Proto.EncodeClient(subscribe); wsutil.WriteClientBinary(slow, data) != nil {
		t.Fatal("subscribe to the bulk room")
	}

	alice := dial(t, n, "alice", protocol.SubprotocolProto)
	sent := make([]time.Time, messages)
	body, large := strings.Repeat("x", 1000), strings.Repeat("y", 60000)
	for i := range sent {
		sent[i] = time.Now()
		if _, err := alice.Send(ctxT(t, 30*time.Second), room, fmt.Sprint("m", i), body); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i%2 == 0 { // 9 MB in all
			if _, err := alice.Send(ctxT(t, 30*time.Second), bulk, fmt.Sprint("b", i), large); err != nil {
				t.Fatalf("send to the bulk room %d: %v", i, err)
			}
		}
	}
	timeout := time.After(2 * time.Minute)
	for range arrivals {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatal("healthy members still waiting for messages after 2 minutes")
		}
	}

	var delays []time.Duration
	for _, times := range arrivals {
		for i, at := range times {
			delays = append(delays, at.Sub(sent[i]))
		}
	}
	slices.Sort(delays)
	p50, p99, worst := delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1]
	t.Logf("send to delivery over %d deliveries: p50 %v, p99 %v, max %v", len(delays), p50, p99, worst)
	if worst > 10*time.Second {
		t.Fatalf("a healthy member waited %v for a message", worst)
	}
	if code := readClose(t, slow); code != protocol.ClosePolicy {
		t.Fatalf("slow member closed with %d, want %d", code, protocol.ClosePolicy)
	}
}
