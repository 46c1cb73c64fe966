package transport

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/gateway/reactor"
	"github.com/parley-chat/parley/pkg/protocol"
)

// negotiate picks the first subprotocol offered that Parley speaks.
func negotiate(r *http.Request) protocol.Codec {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if c := protocol.ForSubprotocol(strings.TrimSpace(p)); c != nil {
				return c
			}
		}
	}
	return nil
}

// Upgrader serves the WebSocket path on the goroutine transport: it
// upgrades an HTTP request and runs the connection with a reader and a
// writer goroutine. Both transports take their Config from it.
type Upgrader struct {
	cfg  Config
	open Open
	log  *zap.Logger
	// Closes counts the connections of both transports as they close;
	// Traffic their bytes.
	Closes  Closes
	Traffic reactor.Traffic
}

// NewUpgrader hands each upgraded connection to open.
func NewUpgrader(cfg Config, open Open, log *zap.Logger) *Upgrader {
	return &Upgrader{cfg: cfg.WithDefaults(), open: open, log: log}
}

// ServeHTTP upgrades r, or answers 400 when it offers no subprotocol
// Parley speaks.
func (u *Upgrader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	codec := negotiate(r)
	if codec == nil {
		// RFC 6455 §4.2.2: a server that speaks none of the offered
		// subprotocols fails the handshake rather than picking none.
		u.log.Info("handshake rejected: no supported subprotocol", zap.String("remote", r.RemoteAddr), zap.Strings("offered", r.Header.Values("Sec-WebSocket-Protocol")))
		http.Error(w, noSubprotocol, http.StatusBadRequest)
		return
	}
	up := ws.HTTPUpgrader{Protocol: func(p string) bool { return p == codec.Subprotocol() }}
	nc, _, _, err := up.Upgrade(r, w)
	if err != nil {
		u.log.Info("upgrade failed", zap.String("remote", r.RemoteAddr), zap.Error(err))
		return
	}
	c := &wsConn{
		conn:     nc,
		op:       dataOpCode(codec),
		out:      make(chan outFrame, u.cfg.SendQueue),
		closing:  make(chan struct{}),
		readDone: make(chan struct{}),
		cfg:      &u.cfg,
		log:      u.log,
		closes:   &u.Closes,
		traffic:  &u.Traffic,
	}
	h := u.open(c, codec)
	go c.writeLoop()
	c.readLoop(h)
}

type outFrame struct {
	op   ws.OpCode
	data []byte
}

// wsConn is the goroutine-per-connection transport.
type wsConn struct {
	conn    net.Conn
	op      ws.OpCode // data frames' opcode for this subprotocol
	out     chan outFrame
	cfg     *Config
	log     *zap.Logger
	once    sync.Once
	closing chan struct{}
	// readDone is closed when the reader has stopped and drained the input,
	// so the writer may close the socket without a reset losing the close
	// frame it sent.
	readDone chan struct{}
	code     ws.StatusCode
	reason   string
	closes   *Closes          // nil in tests of the connection alone
	traffic  *reactor.Traffic // likewise
}

func (c *wsConn) RemoteAddr() string { return c.conn.RemoteAddr().String() }

func (c *wsConn) Send(frame []byte) { c.enqueue(outFrame{c.op, frame}) }

func (c *wsConn) SendWait(frame []byte) bool {
	select {
	case <-c.closing:
		return false
	case c.out <- outFrame{c.op, frame}:
		return true
	}
}

func (c *wsConn) enqueue(f outFrame) {
	select {
	case <-c.closing:
	case c.out <- f:
	default:
		c.log.Warn("closing slow consumer", zap.String("remote", c.RemoteAddr()), zap.Int("queued", len(c.out)))
		c.Close(protocol.ClosePolicy, reactor.ReasonSlowConsumer)
	}
}

func (c *wsConn) Close(code int, reason string) {
	c.once.Do(func() {
		c.code, c.reason = ws.StatusCode(code), reason
		if c.closes != nil {
			c.closes.closed(c.code, reason)
		}
		close(c.closing)
	})
}

// readLoop reads whole messages and hands them to h until the connection
// ends; protocol violations end it with the matching close code.
func (c *wsConn) readLoop(h FrameHandler) {
	defer h.Closed()
	defer c.drainInput()
	rd := &wsutil.Reader{
		Source:         bufio.NewReaderSize(countingReader{c.conn, c.traffic}, 4096),
		State:          ws.StateServerSide,
		CheckUTF8:      true,
		MaxFrameSize:   c.cfg.MaxFrameSize,
		MaxMessageSize: c.cfg.MaxFrameSize,
		OnIntermediate: c.control,
	}
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		hdr, err := rd.NextFrame()
		if err != nil {
			c.closeOnReadError(err)
			return
		}
		if hdr.OpCode.IsControl() {
			if err := c.control(hdr, rd); err != nil {
				return
			}
			continue
		}
		if hdr.OpCode != c.op {
			c.closeOnReadError(reactor.ErrUnsupportedData)
			return
		}
		data, err := io.ReadAll(rd)
		if err != nil {
			c.closeOnReadError(err)
			return
		}
		h.Handle(data)
	}
}

// closeDrain bounds how long a closing connection's input is discarded while
// the peer reads our close frame and closes its side.
const closeDrain = time.Second

// drainInput discards what the peer still sends until it closes (or
// closeDrain passes): closing a socket with unread input makes the kernel
// send a reset, which can destroy the close frame before the peer reads it.
func (c *wsConn) drainInput() {
	defer close(c.readDone)
	<-c.closing
	_ = c.conn.SetReadDeadline(time.Now().Add(closeDrain))
	_, _ = io.Copy(io.Discard, c.conn)
}

// closeOnReadError closes with the code for a read failure, the same one
// the epoll transport sends.
func (c *wsConn) closeOnReadError(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = reactor.ErrIdleTimeout
	}
	code, reason := reactor.CloseFor(err)
	c.Close(int(code), reason)
	if !errors.Is(err, io.EOF) && !errors.Is(err, reactor.ErrIdleTimeout) {
		c.log.Info("connection read ended", zap.String("remote", c.RemoteAddr()), zap.Error(err))
	}
}

// control answers pings and close frames; other control frames only count
// as activity. It returns an error once the peer asked to close, or the
// input ended or stalled inside the frame, having closed the connection.
func (c *wsConn) control(h ws.Header, r io.Reader) error {
	payload, err := io.ReadAll(io.LimitReader(r, 125))
	if err != nil {
		c.closeOnReadError(err)
		return err
	}
	switch h.OpCode {
	case ws.OpPing:
		c.enqueue(outFrame{ws.OpPong, payload})
	case ws.OpClose:
		code, reason, err := reactor.ParseClose(payload)
		if err != nil {
			c.closeOnReadError(err)
			return err
		}
		c.Close(int(code), reason)
		return io.EOF
	}
	return nil
}

// writeLoop writes queued frames, up to maxBatch of them with one writev,
// sends heartbeat pings, and performs the close.
func (c *wsConn) writeLoop() {
	ping := time.NewTicker(c.cfg.Heartbeat)
	defer ping.Stop()
	defer c.conn.Close()
	out := batch{traffic: c.traffic}
	for {
		select {
		case f := <-c.out:
			out.add(f)
			for n := min(len(c.out), maxBatch-1); n > 0; n-- {
				out.add(<-c.out)
			}
		case <-ping.C:
			out.add(outFrame{ws.OpPing, nil})
		case <-c.closing:
			c.writeClose(&out)
			return
		}
		if err := out.write(c.conn, c.cfg.WriteTimeout); err != nil {
			c.closeOnWriteError(err)
			c.writeClose(&out)
			return
		}
	}
}

// closeOnWriteError closes a connection whose write failed: one that
// stalled for WriteTimeout as a slow consumer (1008), like the epoll
// transport.
func (c *wsConn) closeOnWriteError(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.log.Info("closing connection: writes stalled", zap.String("remote", c.RemoteAddr()))
		c.Close(protocol.ClosePolicy, reactor.ReasonSlowConsumer)
		return
	}
	c.Close(protocol.CloseNormal, "")
}

// writeClose sends the close frame after what out still holds (the rest
// of a frame a failed write cut), then lets the reader drain the input.
// It waits at most closeDrain for each, holding up only this connection.
func (c *wsConn) writeClose(out *batch) {
	out.add(outFrame{ws.OpClose, ws.NewCloseFrameBody(c.code, c.reason)})
	if out.write(c.conn, closeDrain) == nil {
		if tc, ok := c.conn.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
	}
	// Unblock a reader still waiting for input, then let it drain.
	_ = c.conn.SetReadDeadline(time.Now().Add(closeDrain))
	<-c.readDone
}

// maxBatch is the most frames written with one writev.
const maxBatch = 64

// batch is frames to write together. Written whole, it is empty again;
// after a write that failed midway it holds only the unwritten rest of
// the frame the failure cut (the frames not begun are dropped, as a slow
// consumer refetches them), so a close frame can still follow a whole
// frame.
type batch struct {
	bufs [][]byte // headers and payloads, in order
	ends []int    // where each frame ends, in bytes from the batch's start
	hdrs []byte   // the headers' storage
	// left is, during a write, what is not written yet (a field, so that
	// writes allocate nothing).
	left net.Buffers
	// traffic counts the bytes written, when set.
	traffic *reactor.Traffic
}

func (b *batch) add(f outFrame) {
	start := len(b.hdrs)
	b.hdrs = reactor.AppendHeader(b.hdrs, f.op, len(f.data))
	b.bufs = append(b.bufs, b.hdrs[start:], f.data)
	b.ends = append(b.ends, b.size()+len(b.hdrs)-start+len(f.data))
}

// size is the batch's length in bytes.
func (b *batch) size() int {
	if len(b.ends) == 0 {
		return 0
	}
	return b.ends[len(b.ends)-1]
}

// write writes the batch to conn within timeout.
func (b *batch) write(conn net.Conn, timeout time.Duration) error {
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	b.left = b.bufs // WriteTo consumes it
	if _, ok := conn.(*tls.Conn); ok {
		// crypto/tls seals each Write into records of its own and has no
		// writev: buffer by buffer, every frame would take two records
		// and two syscalls. One Write of a copy lets frames share them.
		joined := joinPool.Get().(*[]byte)
		defer putJoined(joined)
		*joined = appendBuffers((*joined)[:0], b.bufs)
		b.left = net.Buffers{*joined}
	}
	n, err := b.left.WriteTo(conn)
	if b.traffic != nil && n > 0 {
		b.traffic.Out.Add(uint64(n))
	}
	var cut []byte
	if err != nil {
		cut = firstBytes(b.left, b.cutRest(int(n)))
	}
	b.left = nil
	clear(b.bufs) // no payload outlives its write
	b.bufs, b.ends, b.hdrs = b.bufs[:0], b.ends[:0], b.hdrs[:0]
	if len(cut) > 0 {
		b.bufs, b.ends = append(b.bufs, cut), append(b.ends, len(cut))
	}
	return err
}

// joinPool holds the buffers a batch is copied into for a TLS connection;
// none is referenced once its write returns.
var joinPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledJoin bounds the buffers kept in joinPool: a rare huge batch's
// is left to the collector.
const maxPooledJoin = 256 << 10

func putJoined(b *[]byte) {
	if cap(*b) <= maxPooledJoin {
		joinPool.Put(b)
	}
}

func appendBuffers(dst []byte, bufs [][]byte) []byte {
	for _, buf := range bufs {
		dst = append(dst, buf...)
	}
	return dst
}

// cutRest is how many bytes of the frame that the batch's first n bytes
// end inside are not among them: 0 when n falls on a frame boundary.
func (b *batch) cutRest(n int) int {
	start := 0
	for _, end := range b.ends {
		if end > n {
			if start < n {
				return end - n
			}
			return 0
		}
		start = end
	}
	return 0
}

// firstBytes copies the first n bytes of v.
func firstBytes(v net.Buffers, n int) []byte {
	out := make([]byte, 0, n)
	for _, buf := range v {
		if len(out) == n {
			break
		}
		out = append(out, buf[:min(len(buf), n-len(out))]...)
	}
	return out
}

// countingReader counts what it reads into traffic.In (when set).
type countingReader struct {
	r       io.Reader
	traffic *reactor.Traffic
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.traffic != nil && n > 0 {
		c.traffic.In.Add(uint64(n))
	}
	return n, err
}
