//go:build linux

package reactor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"go.uber.org/zap/zaptest"
)

// handler records what a connection receives; with echo set it sends each
// message back.
type handler struct {
	c        Conn
	echo     bool
	block    chan struct{} // if set, Handle waits on it first
	mu       sync.Mutex
	got      []string
	inHandle atomic.Int32
	overlap  atomic.Bool // Handle ran concurrently with itself
	closed   chan struct{}
	closes   atomic.Int32
}

func (h *handler) Handle(data []byte) {
	if h.inHandle.Add(1) > 1 {
		h.overlap.Store(true)
	}
	defer h.inHandle.Add(-1)
	if h.block != nil {
		<-h.block
	}
	h.mu.Lock()
	h.got = append(h.got, string(data))
	h.mu.Unlock()
	if h.echo {
		h.c.Send(data)
	}
}

func (h *handler) Closed() {
	h.closes.Add(1)
	close(h.closed)
}

func (h *handler) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// testServer is a Server on a loopback port whose connections' handlers
// arrive on opened.
type testServer struct {
	*Server
	addr   string
	opened chan *handler
}

const noProtocol = "offer test.text or test.bin"

func startServer(t *testing.T, tune func(*Config), newHandler func() *handler) *testServer {
	t.Helper()
	ts := &testServer{opened: make(chan *handler, 1000)}
	if newHandler == nil {
		newHandler = func() *handler { return &handler{echo: true} }
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello over HTTP") })
	cfg := Config{
		Path: "/ws",
		HTTP: mux,
		Protocol: func(name string) (ws.OpCode, bool) {
			switch name {
			case "test.text":
				return ws.OpText, true
			case "test.bin":
				return ws.OpBinary, true
			}
			return 0, false
		},
		NoProtocol:       noProtocol,
		MaxMessageSize:   1 << 20,
		Pollers:          2,
		Workers:          8,
		HandshakeTimeout: time.Second,
		Log:              zaptest.NewLogger(t),
		Open: func(c Conn, _ string) Handler {
			h := newHandler()
			h.c, h.closed = c, make(chan struct{})
			ts.opened <- h
			return h
		},
	}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ts.Server, ts.addr = srv, ln.Addr().String()
	return ts
}

// dial opens a client connection and returns it with its server handler.
func (ts *testServer) dial(t *testing.T, proto string, d *net.Dialer) (net.Conn, *handler) {
	t.Helper()
	dialer := ws.Dialer{Protocols: []string{proto}}
	if d != nil {
		dialer.NetDial = d.DialContext
	}
	conn, br, _, err := dialer.Dial(context.Background(), "ws://"+ts.addr+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	if br != nil {
		t.Fatal("server sent data before the client spoke")
	}
	t.Cleanup(func() { conn.Close() })
	select {
	case h := <-ts.opened:
		return conn, h
	case <-time.After(5 * time.Second):
		t.Fatal("server did not open the connection")
	}
	return nil, nil
}

func waitClosed(t *testing.T, h *handler) {
	t.Helper()
	select {
	case <-h.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Closed not called")
	}
}

// readClose reads server frames until a close frame, answers it as a
// client does, and returns its code and reason; data frames before it are
// counted.
func readClose(t *testing.T, conn net.Conn) (ws.StatusCode, string, int) {
	t.Helper()
	code, reason, data, ok := readUntilClose(t, conn)
	if !ok {
		t.Fatalf("no close frame after %d data frames", data)
	}
	_ = ws.WriteFrame(conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, ""))))
	return code, reason, data
}

// readUntilClose is readClose for a connection whose close frame may be
// missing: ok is false when the input ended without one.
func readUntilClose(t *testing.T, conn net.Conn) (code ws.StatusCode, reason string, data int, ok bool) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := ws.ReadFrame(conn)
		if err != nil {
			return 0, "", data, false
		}
		switch f.Header.OpCode {
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(f.Payload)
			return code, reason, data, true
		case ws.OpText, ws.OpBinary:
			data++
		}
	}
}

// expectEOF checks that the server closed the TCP connection.
func expectEOF(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("after %d bytes: %v, want EOF", n, err)
	}
}

func TestEchoBothFrameTypes(t *testing.T) {
	ts := startServer(t, nil, nil)
	for _, c := range []struct {
		proto string
		op    ws.OpCode
	}{{"test.text", ws.OpText}, {"test.bin", ws.OpBinary}} {
		conn, _ := ts.dial(t, c.proto, nil)
		for _, size := range []int{0, 5, 200, 70000, 300000} {
			want := strings.Repeat("é", size/2)
			if err := wsutil.WriteClientMessage(conn, c.op, []byte(want)); err != nil {
				t.Fatal(err)
			}
			got, op, err := wsutil.ReadServerData(conn)
			if err != nil || op != c.op || string(got) != want {
				t.Fatalf("%s size %d: got %d bytes op %v err %v", c.proto, size, len(got), op, err)
			}
		}
	}
}

func TestHTTPOnTheSamePort(t *testing.T) {
	ts := startServer(t, nil, nil)
	for range 3 { // keep-alive: several requests on one connection
		resp, err := http.Get("http://" + ts.addr + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello over HTTP" {
			t.Fatalf("HTTP %d %q", resp.StatusCode, body)
		}
	}
	resp, err := http.Get("http://" + ts.addr + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown path: HTTP %d", resp.StatusCode)
	}
}

func TestHandshakeRejections(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.CheckOrigin = func(o string) bool { return o != "http://evil.example" }
	}, nil)
	for _, c := range []struct {
		protocol, origin string
		status           int
		body             string
	}{
		{"", "", 400, noProtocol},
		{"chat.v9, other", "", 400, noProtocol},
		{"test.text", "http://evil.example", 403, "origin not allowed"},
	} {
		req, _ := http.NewRequest("GET", "http://"+ts.addr+"/ws", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if c.protocol != "" {
			req.Header.Set("Sec-WebSocket-Protocol", c.protocol)
		}
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.body) {
			t.Fatalf("%+v: HTTP %d %q", c, resp.StatusCode, body)
		}
	}
	// The first offered subprotocol that is spoken wins.
	conn, _, hs, err := ws.Dialer{Protocols: []string{"nope", "test.bin", "test.text"}}.Dial(context.Background(), "ws://"+ts.addr+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if hs.Protocol != "test.bin" {
		t.Fatalf("negotiated %q", hs.Protocol)
	}
}

// A client that dribbles its handshake is dropped at the deadline and does
// not hold up others.
func TestHandshakeTimeout(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond; c.Handshakes = 1 }, nil)
	slow, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_, _ = slow.Write([]byte("GET /ws HT"))
	start := time.Now()
	ts.dial(t, "test.text", nil) // waits for the only handshake slot
	expectEOF(t, slow)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow handshake held the slot for %v", d)
	}
}

// The client starts the closing handshake: the server echoes its close
// frame, closes TCP and runs Closed once.
func TestClientCloseHandshake(t *testing.T) {
	ts := startServer(t, nil, nil)
	conn, h := ts.dial(t, "test.text", nil)
	body := ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")
	if err := ws.WriteFrame(conn, ws.MaskFrame(ws.NewCloseFrame(body))); err != nil {
		t.Fatal(err)
	}
	if code, reason, _ := readClose(t, conn); code != ws.StatusGoingAway || reason != "bye" {
		t.Fatalf("echo %d %q", code, reason)
	}
	expectEOF(t, conn)
	waitClosed(t, h)
	if n := h.closes.Load(); n != 1 {
		t.Fatalf("Closed ran %d times", n)
	}
}

// The application closes: queued data goes first, then the close frame;
// the client's answer completes the handshake and the server closes TCP.
func TestServerClose(t *testing.T) {
	ts := startServer(t, nil, nil)
	conn, h := ts.dial(t, "test.text", nil)
	h.c.Send([]byte("last words"))
	h.c.Close(int(ws.StatusGoingAway), "draining")
	h.c.Close(int(ws.StatusNormalClosure), "again") // no effect
	got, _, err := wsutil.ReadServerData(conn)
	if err != nil || string(got) != "last words" {
		t.Fatalf("got %q %v", got, err)
	}
	if code, reason, _ := readClose(t, conn); code != ws.StatusGoingAway || reason != "draining" {
		t.Fatalf("close %d %q", code, reason)
	}
	start := time.Now()
	expectEOF(t, conn)
	waitClosed(t, h)
	if d := time.Since(start); d >= time.Second {
		t.Fatalf("ended after %v: the client's close frame was not noticed", d)
	}
}

// A client that never answers the close frame is dropped after
// WriteTimeout.
func TestUnansweredCloseLingers(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.WriteTimeout = 500 * time.Millisecond }, nil)
	_, h := ts.dial(t, "test.text", nil)
	start := time.Now()
	h.c.Close(int(ws.StatusGoingAway), "bye")
	waitClosed(t, h)
	if d := time.Since(start); d < 450*time.Millisecond {
		t.Fatalf("dropped after %v, before WriteTimeout", d)
	}
}

func TestProtocolViolationsCloseWithTheirCode(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxMessageSize = 64 << 10 }, nil)
	unmasked := func(conn net.Conn) {
		_ = ws.WriteFrame(conn, ws.NewBinaryFrame([]byte{1}))
	}
	frames := func(fs ...ws.Frame) func(net.Conn) {
		return func(conn net.Conn) {
			for _, f := range fs {
				_ = ws.WriteFrame(conn, ws.MaskFrame(f))
			}
		}
	}
	for _, c := range []struct {
		name, proto string
		write       func(net.Conn)
		want        ws.StatusCode
	}{
		{"unmasked", "test.bin", unmasked, ws.StatusProtocolError},
		{"invalid UTF-8 across fragments", "test.text", frames(
			ws.NewFrame(ws.OpText, false, []byte("caf\xc3")),
			ws.NewPingFrame(nil),
			ws.NewFrame(ws.OpContinuation, true, []byte("("))), ws.StatusInvalidFramePayloadData},
		{"too big", "test.bin", frames(ws.NewBinaryFrame(make([]byte, 200<<10))), ws.StatusMessageTooBig},
		{"wrong frame type", "test.text", frames(ws.NewBinaryFrame([]byte{1})), ws.StatusUnsupportedData},
		{"bad close code", "test.text", frames(ws.NewCloseFrame(ws.NewCloseFrameBody(1005, ""))), ws.StatusProtocolError},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, h := ts.dial(t, c.proto, nil)
			c.write(conn)
			if code, reason, _ := readClose(t, conn); code != c.want {
				t.Fatalf("close %d %q, want %d", code, reason, c.want)
			}
			conn.Close() // the server skips input after a violation: EOF ends it
			waitClosed(t, h)
		})
	}
}

func TestHeartbeatAndIdleTimeout(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.Heartbeat = 50 * time.Millisecond
		c.IdleTimeout = 400 * time.Millisecond
	}, nil)

	// A client that answers pings stays.
	alive, _ := ts.dial(t, "test.text", nil)
	pings := make(chan struct{}, 100)
	go func() {
		rd := wsutil.NewClientSideReader(alive)
		ctl := wsutil.ControlFrameHandler(alive, ws.StateClientSide)
		for {
			hdr, err := rd.NextFrame()
			if err != nil {
				return
			}
			if hdr.OpCode == ws.OpPing {
				pings <- struct{}{}
			}
			if hdr.OpCode.IsControl() {
				if ctl(hdr, rd) != nil {
					return
				}
			}
		}
	}()

	// A silent one is closed with 1008.
	silent, h := ts.dial(t, "test.text", nil)
	start := time.Now()
	code, reason, _ := readClose(t, silent)
	if code != ws.StatusPolicyViolation || reason != "idle timeout" {
		t.Fatalf("close %d %q", code, reason)
	}
	if d := time.Since(start); d < 350*time.Millisecond || d > 3*time.Second {
		t.Fatalf("idle close after %v", d)
	}
	waitClosed(t, h)
	if len(pings) < 3 {
		t.Fatalf("%d pings in %v", len(pings), time.Since(start))
	}
	if err := wsutil.WriteClientText(alive, []byte("still here")); err != nil {
		t.Fatal(err)
	}
}

// Each connection's messages reach its handler in order and one at a time,
// even when the client sends faster than the handler runs.
func TestPerConnectionOrderAndBackpressure(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, func(c *Config) { c.ReadBufferSize = 512 }, func() *handler { return &handler{block: release} })
	const n = 2000
	var conns []net.Conn
	var hs []*handler
	for range 3 {
		c, h := ts.dial(t, "test.text", nil)
		conns, hs = append(conns, c), append(hs, h)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := bufio.NewWriter(c)
			for i := range n {
				_ = wsutil.WriteClientText(w, []byte(fmt.Sprint(i)))
			}
			_ = w.Flush()
		}()
	}
	// While the handlers are blocked, the pollers stop reading: the
	// inboxes stay near maxInbox and the rest waits in TCP buffers.
	time.Sleep(300 * time.Millisecond)
	for _, h := range hs {
		s := ts.slots.at(int(h.c.fd))
		s.mu.Lock()
		queued, paused := len(s.inbox), s.paused
		s.mu.Unlock()
		if !paused || queued > maxInbox+512/7 {
			t.Fatalf("inbox holds %d messages (paused %v)", queued, paused)
		}
	}
	close(release)
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for _, h := range hs {
		for len(h.messages()) < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		got := h.messages()
		if len(got) != n {
			t.Fatalf("handled %d of %d", len(got), n)
		}
		for i, m := range got {
			if m != fmt.Sprint(i) {
				t.Fatalf("message %d is %q", i, m)
			}
		}
		if h.overlap.Load() {
			t.Fatal("Handle ran concurrently for one connection")
		}
	}
}

// smallReceiveBuffer makes a client socket that the server fills quickly.
var smallReceiveBuffer = &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
	return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
}}

// A client that stops reading fills its queue and is closed with 1008,
// while Send never blocks and another client gets every message.
func TestSlowConsumerIsClosedOthersKeepReceiving(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.SendQueue = 16 }, nil)
	slow, hs := ts.dial(t, "test.bin", smallReceiveBuffer)
	fast, hf := ts.dial(t, "test.bin", nil)
	const n = 3000
	payload := make([]byte, 1024)
	received := make(chan int)
	go func() {
		count := 0
		for count < n {
			if _, _, err := wsutil.ReadServerData(fast); err != nil {
				break
			}
			count++
		}
		received <- count
	}()
	start := time.Now()
	for range n {
		hs.c.Send(payload) // must not block once the slow queue is full
		hf.c.Send(payload)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("sending took %v", d)
	}
	if got := <-received; got != n {
		t.Fatalf("fast client got %d of %d", got, n)
	}
	code, reason, data := readClose(t, slow)
	if code != ws.StatusPolicyViolation || reason != ReasonSlowConsumer {
		t.Fatalf("slow client: close %d %q", code, reason)
	}
	if data >= n {
		t.Fatalf("slow client got all %d messages", data)
	}
	waitClosed(t, hs)
	select {
	case <-hf.closed:
		t.Fatal("fast client closed")
	default:
	}
}

// A client that stops reading is dropped WriteTimeout after its output
// stopped moving, whether its queue overflowed first or not, and its
// close frame 1008 goes out with the drop when the socket takes it: the
// socket took nothing for WriteTimeout but has room for the few bytes of
// the frame in progress and the close frame. Reading again, the client
// gets its backlog, then the close frame.
func TestStalledClientGetsCloseFrame(t *testing.T) {
	for name, c := range map[string]struct {
		queue int
		// The stall is noticed after the write timeout; an overflow at
		// once, and the timeout is then the client's time to read what
		// the socket holds before the close frame (generous: a loaded
		// machine under -race reads megabytes slowly): the client reads
		// at once, as a slow but live one does.
		writeTimeout time.Duration
	}{"writes stall": {1 << 20, 300 * time.Millisecond}, "queue overflows": {16, 10 * time.Second}} {
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, func(cfg *Config) { cfg.WriteTimeout, cfg.SendQueue = c.writeTimeout, c.queue }, nil)
			conn, h := ts.dial(t, "test.bin", smallReceiveBuffer)
			const n = 10000 // 10 MB, more than the socket buffers hold
			for range n {
				h.c.Send(make([]byte, 1024))
			}
			if c.queue > n {
				// Stalled: the connection ends before the client reads.
				// The close frame is best effort then: written only if
				// the full socket still takes its few bytes, which a
				// loaded machine may not give. The drop itself is what
				// must happen.
				waitClosed(t, h)
				if code, reason, data, ok := readUntilClose(t, conn); ok && (code != ws.StatusPolicyViolation || reason != ReasonSlowConsumer) {
					t.Fatalf("close %d %q, want %d %q", code, reason, ws.StatusPolicyViolation, ReasonSlowConsumer)
				} else if data >= n {
					t.Fatalf("the client got all %d messages", data)
				}
				return
			}
			code, reason, data := readClose(t, conn)
			waitClosed(t, h)
			if code != ws.StatusPolicyViolation || reason != ReasonSlowConsumer {
				t.Fatalf("close %d %q, want %d %q", code, reason, ws.StatusPolicyViolation, ReasonSlowConsumer)
			}
			if data >= n {
				t.Fatalf("the client got all %d messages", data)
			}
		})
	}
}

func TestSendWaitWaitsForRoom(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.SendQueue = 4 }, nil)
	conn, h := ts.dial(t, "test.bin", smallReceiveBuffer)
	const n = 3000 // 12 MB, more than the socket buffers hold
	done := make(chan int)
	go func() {
		sent := 0
		for range n {
			if !h.c.SendWait(make([]byte, 4096)) {
				break
			}
			sent++
		}
		done <- sent
	}()
	select {
	case sent := <-done:
		t.Fatalf("SendWait did not wait: %d sent to a client that does not read", sent)
	case <-time.After(200 * time.Millisecond):
	}
	for i := range n {
		if _, _, err := wsutil.ReadServerData(conn); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if sent := <-done; sent != n {
		t.Fatalf("sent %d", sent)
	}

	// A waiting SendWait returns false when the connection closes.
	go func() {
		for h.c.SendWait(make([]byte, 4096)) {
		}
		done <- 0
	}()
	time.Sleep(100 * time.Millisecond)
	h.c.Close(int(ws.StatusNormalClosure), "")
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("SendWait still blocked after Close")
	}
}

// A handle kept after its connection ended touches nothing, even when the
// fd serves a new connection.
func TestStaleHandle(t *testing.T) {
	ts := startServer(t, nil, nil)
	old, h := ts.dial(t, "test.text", nil)
	old.Close()
	waitClosed(t, h)
	conn, h2 := ts.dial(t, "test.text", nil)
	if h2.c.fd != h.c.fd {
		t.Logf("fd not reused (%d, then %d)", h.c.fd, h2.c.fd)
	}
	h.c.Send([]byte("to the old connection"))
	h.c.Close(int(ws.StatusPolicyViolation), "stale")
	if h.c.RemoteAddr() != "" || h2.c.RemoteAddr() == "" {
		t.Fatalf("addresses %q %q", h.c.RemoteAddr(), h2.c.RemoteAddr())
	}
	h2.c.Send([]byte("fresh"))
	got, _, err := wsutil.ReadServerData(conn)
	if err != nil || string(got) != "fresh" {
		t.Fatalf("got %q %v", got, err)
	}
}

// Close drops every connection and runs each Closed.
func TestCloseEndsEverything(t *testing.T) {
	ts := startServer(t, nil, nil)
	var conns []net.Conn
	var hs []*handler
	for range 5 {
		c, h := ts.dial(t, "test.text", nil)
		conns, hs = append(conns, c), append(hs, h)
	}
	ts.Close()
	for i := range hs {
		waitClosed(t, hs[i])
		expectEOF(t, conns[i])
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Fatal("still accepting")
	}
}

// A page of the fd table is one 32 KiB size class only while a slot is 128
// bytes; at 136 it took a 40 KiB span, 160 bytes per connection.
func TestSlotFitsItsPage(t *testing.T) {
	if size := unsafe.Sizeof(slot{}); size != 128 {
		t.Fatalf("slot is %d bytes, want 128", size)
	}
}
