package node_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// errorCode returns the code of a *client.ServerError, or 0.
func errorCode(err error) pb.ErrorCode {
	var se *client.ServerError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func nextEvent(t *testing.T, c *client.Client) *pb.ServerFrame {
	t.Helper()
	select {
	case f := <-c.Events():
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return nil
}

// waitClosed waits for the server to end c and returns its close code.
func waitClosed(t *testing.T, c *client.Client) ws.StatusCode {
	t.Helper()
	select {
	case <-c.Done():
		return c.CloseCode()
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed")
	}
	return 0
}

// Bad input gets an error frame or the right close code and never affects
// anyone else: a bystander keeps chatting throughout.
func TestBadInput(t *testing.T) { forEachBackend(t, testBadInput) }

func testBadInput(t *testing.T, b backend) {
	n := startNode(t, testConfigOn(t, b, t.TempDir()))
	room := createRoom(t, n, "alice", "bob")
	bystander := dial(t, n, "bob", protocol.SubprotocolProto)
	if _, err := bystander.Subscribe(ctxT(t, 5*time.Second), room, nil); err != nil {
		t.Fatal(err)
	}
	alice := dial(t, n, "alice", protocol.SubprotocolJSON)
	sent := 0
	stillWorks := func(t *testing.T) {
		t.Helper()
		sent++
		if _, err := alice.Send(ctxT(t, 10*time.Second), room, "ok-"+strings.Repeat("x", sent), "still here"); err != nil {
			t.Fatalf("healthy connection broken: %v", err)
		}
		if m := nextEvent(t, bystander).GetMessage(); m.GetSeq() != uint64(sent) {
			t.Fatalf("bystander got %v, want seq %d", m, sent)
		}
	}

	t.Run("malformed frames get MALFORMED_FRAME and the connection lives on", func(t *testing.T) {
		for _, sub := range subprotocols {
			c := dial(t, n, "alice", sub)
			op, junk := ws.OpBinary, []byte{0x0a, 0xff, 0x01}
			if sub == protocol.SubprotocolJSON {
				op, junk = ws.OpText, []byte(`{"id": 1, "send": [`)
			}
			if err := c.WriteFrame(op, junk); err != nil {
				t.Fatal(err)
			}
			if e := nextEvent(t, c).GetError(); e.GetCode() != pb.ErrorCode_ERROR_CODE_MALFORMED_FRAME {
				t.Fatalf("%s: got %v", sub, e)
			}
			if _, err := c.Request(ctxT(t, 5*time.Second), &pb.ClientFrame{Kind: &pb.ClientFrame_Ping{Ping: &pb.Ping{}}}); err != nil {
				t.Fatalf("%s: ping after bad frame: %v", sub, err)
			}
		}
		stillWorks(t)
	})

	t.Run("unknown frame types get UNKNOWN_FRAME", func(t *testing.T) {
		c := dial(t, n, "alice", protocol.SubprotocolJSON)
		_, err := c.Request(ctxT(t, 5*time.Second), &pb.ClientFrame{})
		if errorCode(err) != pb.ErrorCode_ERROR_CODE_UNKNOWN_FRAME {
			t.Fatalf("empty frame: %v", err)
		}
		if err := c.WriteFrame(ws.OpText, []byte(`{"id":"77","teleport":{"to":"mars"}}`)); err != nil {
			t.Fatal(err)
		}
		stillWorks(t)
	})

	t.Run("invalid UTF-8 in a text frame closes with 1007", func(t *testing.T) {
		c := dial(t, n, "alice", protocol.SubprotocolJSON)
		_ = c.WriteFrame(ws.OpText, []byte{'{', 0xff, 0xfe, '}'})
		if code := waitClosed(t, c); code != 1007 {
			t.Fatalf("close code %d", code)
		}
		stillWorks(t)
	})

	t.Run("wrong frame type for the subprotocol closes with 1003", func(t *testing.T) {
		c := dial(t, n, "alice", protocol.SubprotocolJSON)
		_ = c.WriteFrame(ws.OpBinary, []byte{1, 2, 3})
		if code := waitClosed(t, c); code != 1003 {
			t.Fatalf("close code %d", code)
		}
	})

	t.Run("a frame over the size limit closes with 1009", func(t *testing.T) {
		c := dial(t, n, "alice", protocol.SubprotocolProto)
		_ = c.WriteFrame(ws.OpBinary, make([]byte, 200<<10))
		if code := waitClosed(t, c); code != 1009 {
			t.Fatalf("close code %d", code)
		}
		stillWorks(t)
	})

	t.Run("a body over the limit gets MESSAGE_TOO_LARGE", func(t *testing.T) {
		_, err := alice.Send(ctxT(t, 5*time.Second), room, "big", strings.Repeat("é", 33<<10))
		if errorCode(err) != pb.ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("unknown rooms and rooms of others get ROOM_NOT_FOUND on every path", func(t *testing.T) {
		mallory := dial(t, n, "mallory", protocol.SubprotocolProto)
		zero := uint64(0)
		for _, r := range []string{room, "no-such-room"} {
			if _, err := mallory.Send(ctxT(t, 10*time.Second), r, "m1", "let me in"); errorCode(err) != pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND {
				t.Fatalf("send to %s: %v", r, err)
			}
			if _, err := mallory.Subscribe(ctxT(t, 5*time.Second), r, &zero); errorCode(err) != pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND {
				t.Fatalf("subscribe to %s: %v", r, err)
			}
			if _, err := mallory.History(ctxT(t, 5*time.Second), &pb.HistoryRequest{Room: r}); errorCode(err) != pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND {
				t.Fatalf("history of %s: %v", r, err)
			}
		}
		if _, err := mallory.Subscribe(ctxT(t, 5*time.Second), "bad.room", nil); errorCode(err) != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
			t.Fatalf("invalid room id: %v", err)
		}
		expectQuiet(t, mallory, 100*time.Millisecond)
		stillWorks(t)
	})

	t.Run("requests before authentication get UNAUTHENTICATED; bad tokens AUTH_FAILED", func(t *testing.T) {
		c, err := client.Dial(ctxT(t, 5*time.Second), wsURL(n), client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Send(ctxT(t, 5*time.Second), room, "x", "hi"); errorCode(err) != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED {
			t.Fatalf("send before auth: %v", err)
		}
		if _, err := c.Authenticate(ctxT(t, 5*time.Second), "not-a-token"); errorCode(err) != pb.ErrorCode_ERROR_CODE_AUTH_FAILED {
			t.Fatalf("bad token: %v", err)
		}
		if _, err := c.Authenticate(ctxT(t, 5*time.Second), devToken(t, n, "alice")); err != nil {
			t.Fatalf("good token after a bad one: %v", err)
		}
		if _, err := c.Authenticate(ctxT(t, 5*time.Second), devToken(t, n, "bob")); errorCode(err) != pb.ErrorCode_ERROR_CODE_ALREADY_AUTHENTICATED {
			t.Fatalf("second auth: %v", err)
		}
	})

	t.Run("an unmasked client frame closes with 1002", func(t *testing.T) {
		conn := rawDial(t, n, protocol.SubprotocolProto)
		_ = ws.WriteFrame(conn, ws.NewBinaryFrame([]byte{1}))
		if code := readClose(t, conn); code != 1002 {
			t.Fatalf("close code %d", code)
		}
		stillWorks(t)
	})

	t.Run("a missing or unknown subprotocol fails the handshake with 400", func(t *testing.T) {
		for _, offered := range []string{"", "chat.v9"} {
			req, _ := http.NewRequest("GET", "http://"+n.HTTPAddr()+"/ws", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			if offered != "" {
				req.Header.Set("Sec-WebSocket-Protocol", offered)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(body), protocol.SubprotocolJSON) {
				t.Fatalf("offered %q: HTTP %d %q", offered, resp.StatusCode, body)
			}
		}
	})

	t.Run("no authentication in time closes with 1008", func(t *testing.T) {
		// The default auth timeout is 10s; a dedicated node uses 300ms.
		cfg := testConfigOn(t, b, t.TempDir())
		cfg.Gateway.AuthTimeout = 300 * time.Millisecond
		n2 := startNode(t, cfg)
		c, err := client.Dial(ctxT(t, 5*time.Second), wsURL(n2), client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if code := waitClosed(t, c); code != 1008 {
			t.Fatalf("close code %d", code)
		}
	})
}

// rawDial opens a WebSocket connection without the client package, for
// writing frames no well-behaved client would.
func rawDial(t *testing.T, n *node.Node, sub string) net.Conn {
	t.Helper()
	d := ws.Dialer{Protocols: []string{sub}}
	conn, _, _, err := d.Dial(context.Background(), wsURL(n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readClose reads frames until the server's close frame and returns its code.
func readClose(t *testing.T, conn net.Conn) ws.StatusCode {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := ws.ReadFrame(conn)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return code
		}
	}
}
