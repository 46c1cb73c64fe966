package transport

import (
	"bytes"
	"net"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"go.uber.org/zap"
)

// recordFrames keeps the messages a connection hands on.
type recordFrames struct {
	msgs   [][]byte
	closed bool
}

func (r *recordFrames) Handle(data []byte) { r.msgs = append(r.msgs, bytes.Clone(data)) }
func (r *recordFrames) Closed()            { r.closed = true }

// maskedFrame encodes a frame as a client sends it.
func maskedFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	b, err := ws.CompileFrame(ws.MaskFrame(ws.NewFrame(op, fin, payload)))
	if err != nil {
		panic(err)
	}
	return b
}

// readClient runs the goroutine transport's reader over what a client
// sends, stream, and the end of its input. It returns the connection and
// what it handed on, once the reader is done, or nil if the reader is
// still running a while after the input ended.
func readClient(stream []byte, op ws.OpCode, maxFrame int64) (*wsConn, *recordFrames) {
	server, client := net.Pipe()
	defer server.Close()
	cfg := Config{MaxFrameSize: maxFrame, IdleTimeout: time.Minute, Heartbeat: time.Hour, WriteTimeout: time.Second}
	c := &wsConn{
		conn:     server,
		op:       op,
		out:      make(chan outFrame, len(stream)/2+1), // room for a pong per frame: nothing writes
		closing:  make(chan struct{}),
		readDone: make(chan struct{}),
		cfg:      &cfg,
		log:      zap.NewNop(),
	}
	go func() {
		_, _ = client.Write(stream)
		client.Close()
	}()
	h := new(recordFrames)
	done := make(chan struct{})
	go func() {
		c.readLoop(h)
		close(done)
	}()
	select {
	case <-done:
		return c, h
	case <-time.After(5 * time.Second):
		return nil, nil
	}
}

// FuzzWSConnRead gives the goroutine-per-connection transport's reader
// arbitrary client bytes. Once the input ends the reader must be done,
// having closed the connection with a code and reason it may send, handed
// on only messages of the subprotocol's type within the size limit (text
// in UTF-8), and queued only pongs. binary picks the proto subprotocol.
func FuzzWSConnRead(f *testing.F) {
	f.Add(maskedFrame(ws.OpText, true, []byte(`{"id":"1","auth":{"token":"t"}}`)), false)
	f.Add(bytes.Join([][]byte{
		maskedFrame(ws.OpBinary, false, []byte{0x08, 0x01}),
		maskedFrame(ws.OpPing, true, []byte("hb")),
		maskedFrame(ws.OpContinuation, true, []byte{0x12, 0x00}),
		maskedFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")),
	}, nil), true)
	f.Add(maskedFrame(ws.OpText, true, []byte("{\xff}")), false)
	f.Add(maskedFrame(ws.OpBinary, true, make([]byte, 2000)), true)
	f.Add(maskedFrame(ws.OpClose, true, ws.NewCloseFrameBody(999, "")), false)
	f.Add(maskedFrame(ws.OpPing, true, []byte("cut short"))[:8], false)
	f.Fuzz(func(t *testing.T, stream []byte, binary bool) {
		op := ws.OpText
		if binary {
			op = ws.OpBinary
		}
		const maxFrame = 1024
		c, h := readClient(stream, op, maxFrame)
		if c == nil {
			t.Fatalf("%x: the reader still runs after the input ended (the connection was never closed)", stream)
		}
		if !h.closed {
			t.Fatalf("%x: the handler was not told the connection closed", stream)
		}
		body := ws.NewCloseFrameBody(c.code, c.reason)
		if err := ws.CheckCloseFrameData(c.code, c.reason); err != nil || len(body) > ws.MaxControlFramePayloadSize {
			t.Fatalf("%x: closed with %d %q: %v", stream, c.code, c.reason, err)
		}
		for _, m := range h.msgs {
			if len(m) > maxFrame || op == ws.OpText && !utf8.Valid(m) {
				t.Fatalf("%x: handed on %q", stream, m)
			}
		}
		for len(c.out) > 0 {
			if f := <-c.out; f.op != ws.OpPong || len(f.data) > ws.MaxControlFramePayloadSize {
				t.Fatalf("%x: queued a %v frame of %d bytes", stream, f.op, len(f.data))
			}
		}
	})
}

// A client that stalls inside a control frame is closed at the idle
// timeout, like one that stalls anywhere else (the reader used to return
// without closing, leaving the connection open as long as the client read
// its heartbeats).
func TestStalledControlFrameTimesOut(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	cfg := Config{IdleTimeout: 50 * time.Millisecond, Heartbeat: time.Hour, WriteTimeout: time.Second}
	c := &wsConn{conn: server, op: ws.OpText, out: make(chan outFrame, 1), closing: make(chan struct{}),
		readDone: make(chan struct{}), cfg: &cfg, log: zap.NewNop()}
	h := new(recordFrames)
	go c.readLoop(h)
	if _, err := client.Write(maskedFrame(ws.OpPing, true, []byte("cut short"))[:8]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.closing:
	case <-time.After(5 * time.Second):
		t.Fatal("not closed after the idle timeout")
	}
	if c.code != ws.StatusPolicyViolation || c.reason != "idle timeout" {
		t.Fatalf("closed with %d %q", c.code, c.reason)
	}
}
