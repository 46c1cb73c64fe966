package gateway

import (
	"bufio"
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

// serveWS upgrades an HTTP request and runs the connection with a reader
// and a writer goroutine (the portable transport).
func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	codec := negotiate(r)
	if codec == nil {
		// RFC 6455 §4.2.2: a server that speaks none of the offered
		// subprotocols fails the handshake rather than picking none.
		g.log.Info("handshake rejected: no supported subprotocol", zap.String("remote", r.RemoteAddr), zap.Strings("offered", r.Header.Values("Sec-WebSocket-Protocol")))
		http.Error(w, noSubprotocol, http.StatusBadRequest)
		return
	}
	up := ws.HTTPUpgrader{Protocol: func(p string) bool { return p == codec.Subprotocol() }}
	nc, _, _, err := up.Upgrade(r, w)
	if err != nil {
		g.log.Info("upgrade failed", zap.String("remote", r.RemoteAddr), zap.Error(err))
		return
	}
	c := &wsConn{
		conn:     nc,
		op:       dataOpCode(codec),
		out:      make(chan outFrame, g.cfg.SendQueue),
		closing:  make(chan struct{}),
		readDone: make(chan struct{}),
		cfg:      &g.cfg,
		log:      g.log,
	}
	s := g.newSession(c, codec)
	go c.writeLoop()
	c.readLoop(s)
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
		close(c.closing)
	})
}

// readLoop reads whole messages and hands them to h until the connection
// ends; protocol violations end it with the matching close code.
func (c *wsConn) readLoop(h FrameHandler) {
	defer h.Closed()
	defer c.drainInput()
	rd := &wsutil.Reader{
		Source:         bufio.NewReaderSize(c.conn, 4096),
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
// as activity. It returns an error once the peer asked to close.
func (c *wsConn) control(h ws.Header, r io.Reader) error {
	payload, err := io.ReadAll(io.LimitReader(r, 125))
	if err != nil {
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

// writeLoop writes queued frames, coalescing whatever is queued into one
// flush, sends heartbeat pings, and performs the close.
func (c *wsConn) writeLoop() {
	bw := bufio.NewWriterSize(c.conn, 4096)
	ping := time.NewTicker(c.cfg.Heartbeat)
	defer ping.Stop()
	defer c.conn.Close()
	write := func(f outFrame) error {
		if err := ws.WriteHeader(bw, ws.Header{Fin: true, OpCode: f.op, Length: int64(len(f.data))}); err != nil {
			return err
		}
		_, err := bw.Write(f.data)
		return err
	}
	for {
		var err error
		select {
		case f := <-c.out:
			_ = c.conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
			err = write(f)
			for n := len(c.out); err == nil && n > 0; n-- {
				err = write(<-c.out)
			}
			if err == nil {
				err = bw.Flush()
			}
		case <-ping.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
			if err = write(outFrame{ws.OpPing, nil}); err == nil {
				err = bw.Flush()
			}
		case <-c.closing:
			_ = c.conn.SetWriteDeadline(time.Now().Add(closeDrain))
			body := ws.NewCloseFrameBody(c.code, c.reason)
			if write(outFrame{ws.OpClose, body}) == nil && bw.Flush() == nil {
				if tc, ok := c.conn.(interface{ CloseWrite() error }); ok {
					_ = tc.CloseWrite()
				}
			}
			// Unblock a reader still waiting for input, then let it drain.
			_ = c.conn.SetReadDeadline(time.Now().Add(closeDrain))
			<-c.readDone
			return
		}
		if err != nil {
			c.Close(protocol.CloseNormal, "")
			return
		}
	}
}
