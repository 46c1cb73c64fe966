//go:build linux

package reactor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Config tunes a Server. Path, HTTP, Protocol, Open and MaxMessageSize are
// required; the rest have defaults.
type Config struct {
	Path string       // the WebSocket endpoint, e.g. "/ws"
	HTTP http.Handler // serves every other request on the same port

	// Protocol reports whether a subprotocol is spoken and the opcode of
	// its data frames. The first offered that is spoken is chosen; a
	// client offering none gets HTTP 400 with NoProtocol as the body.
	Protocol   func(name string) (ws.OpCode, bool)
	NoProtocol string
	// CheckOrigin, if set, rejects handshakes whose Origin it refuses.
	CheckOrigin func(origin string) bool
	// Open is called once per upgraded connection, before its first
	// message, and returns the connection's handler (not nil).
	Open func(c Conn, subprotocol string) Handler

	MaxMessageSize   int64         // larger messages close with 1009
	SendQueue        int           // frames queued per connection (4096)
	Heartbeat        time.Duration // ping interval (25s)
	IdleTimeout      time.Duration // close after this long with no input (60s)
	WriteTimeout     time.Duration // drop a connection whose output is stuck, or whose close is unanswered, this long (10s)
	HandshakeTimeout time.Duration // whole request line and headers (5s)
	Pollers          int           // epoll loops (GOMAXPROCS)
	Workers          int           // goroutines running handlers (64 per GOMAXPROCS)
	Handshakes       int           // handshakes in progress at once (256)
	ReadBufferSize   int           // each poller's read buffer (64 KiB)
	Log              *zap.Logger
	// OnClose, when set, is told the close code of each connection as
	// its closing starts (the first decided, by either side). It runs
	// under the connection's lock: it must be quick and never block.
	OnClose func(code ws.StatusCode, reason string)
	// Traffic, when set, counts the bytes read and written.
	Traffic *Traffic
}

func (c Config) withDefaults() Config {
	procs := runtime.GOMAXPROCS(0)
	orDefault(&c.SendQueue, 4096)
	orDefault(&c.Heartbeat, 25*time.Second)
	orDefault(&c.IdleTimeout, 60*time.Second)
	orDefault(&c.WriteTimeout, 10*time.Second)
	orDefault(&c.HandshakeTimeout, 5*time.Second)
	orDefault(&c.Pollers, procs)
	orDefault(&c.Workers, 64*procs)
	orDefault(&c.Handshakes, 256)
	orDefault(&c.ReadBufferSize, 64<<10)
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	return c
}

func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Handler receives one connection's input: Handle for each complete data
// message, in order and never concurrently, then Closed once.
type Handler interface {
	Handle(data []byte)
	Closed()
}

// Server is an epoll WebSocket server. Idle connections cost a slot in an
// fd-indexed table and a wheel entry, and no goroutine: a few pollers read
// and parse all connections, a bounded pool of workers runs handlers, and
// sends write straight to the socket.
type Server struct {
	cfg     Config
	log     *zap.Logger
	slots   *table
	pollers []*poller
	queue   *runQueue
	http    *http.Server
	hsSlots chan struct{} // one per handshake in progress

	start                            time.Time
	tick                             time.Duration
	pingTicks, idleTicks, writeTicks uint32

	closing atomic.Bool
	mu      sync.Mutex
	ln      net.Listener
	httpLn  *connListener

	handshakes sync.WaitGroup
	loops      sync.WaitGroup // pollers
	workers    sync.WaitGroup
}

// New starts a server's pollers and workers; Serve then accepts clients.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.Path == "" || cfg.HTTP == nil || cfg.Protocol == nil || cfg.Open == nil || cfg.MaxMessageSize <= 0 {
		return nil, errors.New("reactor: Path, HTTP, Protocol, Open and MaxMessageSize are required")
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("reactor: %w", err)
	}
	r := &Server{
		cfg:     cfg,
		log:     cfg.Log,
		slots:   newTable(int(min(lim.Cur, 1<<24))),
		queue:   newRunQueue(),
		http:    &http.Server{Handler: cfg.HTTP, ReadHeaderTimeout: 10 * time.Second},
		hsSlots: make(chan struct{}, cfg.Handshakes),
		start:   time.Now(),
	}
	// Timers are checked to a tenth of the shortest interval.
	r.tick = min(cfg.Heartbeat, cfg.IdleTimeout, cfg.WriteTimeout) / 10
	r.tick = min(max(r.tick, 10*time.Millisecond), time.Second)
	ticks := func(d time.Duration) uint32 { return uint32((d + r.tick - 1) / r.tick) }
	r.pingTicks, r.idleTicks, r.writeTicks = ticks(cfg.Heartbeat), ticks(cfg.IdleTimeout), ticks(cfg.WriteTimeout)
	wheelSize := int(max(r.pingTicks, r.idleTicks, r.writeTicks)) + 2

	for range cfg.Pollers {
		p, err := newPoller(r, wheelSize)
		if err != nil {
			for _, p := range r.pollers {
				p.closeFDs()
			}
			return nil, fmt.Errorf("reactor: %w", err)
		}
		r.pollers = append(r.pollers, p)
	}
	for _, p := range r.pollers {
		r.loops.Add(1)
		go func() { defer r.loops.Done(); p.run() }()
	}
	for range cfg.Workers {
		r.workers.Add(1)
		go func() { defer r.workers.Done(); r.work() }()
	}
	return r, nil
}

// now is the current tick; ticks start at 1.
func (r *Server) now() uint32 { return uint32(time.Since(r.start)/r.tick) + 1 }

func (r *Server) pollerOf(fd int) *poller { return r.pollers[fd%len(r.pollers)] }

// Serve accepts connections on ln until Shutdown or Close. Each is routed
// by its request line: GET Path is upgraded and handed to a poller, any
// other request is served by the HTTP handler.
func (r *Server) Serve(ln net.Listener) error {
	r.mu.Lock()
	if r.closing.Load() || r.ln != nil {
		r.mu.Unlock()
		return errors.New("reactor: server closed or already serving")
	}
	r.ln, r.httpLn = ln, newConnListener(ln.Addr())
	r.mu.Unlock()
	go func() { _ = r.http.Serve(r.httpLn) }()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if r.stopped() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.log.Warn("accept failed", zap.Error(err), zap.Duration("retry_in", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		r.hsSlots <- struct{}{}
		// Under mu, so that no handshake starts once Close waits for them.
		r.mu.Lock()
		if r.ln == nil {
			r.mu.Unlock()
			<-r.hsSlots
			conn.Close()
			return nil
		}
		r.handshakes.Add(1)
		r.mu.Unlock()
		go func() {
			defer func() { <-r.hsSlots; r.handshakes.Done() }()
			r.handshake(conn)
		}()
	}
}

// stopped reports whether Shutdown or Close has closed the listener.
func (r *Server) stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ln == nil
}

// stopAccepting closes the listener; Serve then returns nil.
func (r *Server) stopAccepting() {
	r.mu.Lock()
	ln := r.ln
	r.ln = nil
	r.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
}

// Shutdown stops accepting and shuts the HTTP side down gracefully.
// WebSocket connections stay open: the application closes them (with 1001)
// at its own pace, then calls Close.
func (r *Server) Shutdown(ctx context.Context) error {
	r.stopAccepting()
	return r.http.Shutdown(ctx)
}

// Close stops accepting, drops every connection still open without a
// close frame, waits for their Closed calls, and stops the pollers and
// workers.
func (r *Server) Close() {
	if r.closing.Swap(true) {
		return
	}
	r.stopAccepting()
	_ = r.http.Close()
	r.handshakes.Wait()
	for _, p := range r.pollers {
		p.stop()
	}
	r.loops.Wait()
	// The pollers are gone, so their connections can be finalized here.
	for i := range r.slots.pages {
		pg := r.slots.pages[i].Load()
		if pg == nil {
			continue
		}
		for j := range pg {
			s, fd := &pg[j], i<<pageBits|j
			s.mu.Lock()
			gen := s.gen
			s.mu.Unlock()
			r.pollerOf(fd).finalize(fd, gen, s)
		}
	}
	r.queue.close()
	r.workers.Wait()
	for _, p := range r.pollers {
		p.closeFDs()
	}
}

// handshake routes a new connection by its request line, within
// HandshakeTimeout, so slow clients cannot hold a handshake slot for long.
func (r *Server) handshake(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(r.cfg.HandshakeTimeout))
	head, err := readRequestLine(conn)
	if err != nil {
		conn.Close()
		return
	}
	if !r.isUpgrade(head) {
		_ = conn.SetDeadline(time.Time{})
		r.httpLn.push(&prefixConn{Conn: conn, prefix: head})
		return
	}
	r.upgrade(conn, head)
}

// maxRequestLine bounds what is read to route a connection; a longer
// request line goes to net/http, which rejects it.
const maxRequestLine = 4096

// readRequestLine reads until the end of the request line and returns all
// bytes read, which may include headers.
func readRequestLine(conn net.Conn) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for bytes.IndexByte(buf, '\n') < 0 && len(buf) < maxRequestLine {
		buf = slices.Grow(buf, 512)
		n, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// isUpgrade reports whether the request line is GET of the WebSocket path.
func (r *Server) isUpgrade(head []byte) bool {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	method, rest, _ := bytes.Cut(line, []byte(" "))
	target, _, _ := bytes.Cut(rest, []byte(" "))
	path, _, _ := bytes.Cut(target, []byte("?"))
	return string(method) == http.MethodGet && string(path) == r.cfg.Path
}

// upgrade performs the WebSocket handshake (head holds the bytes already
// read), then moves the connection from Go's poller to one of ours.
func (r *Server) upgrade(conn net.Conn, head []byte) {
	var (
		proto string
		op    ws.OpCode
		fd    = -1
	)
	u := ws.Upgrader{
		Protocol: func(name []byte) bool {
			o, ok := r.cfg.Protocol(string(name))
			if ok {
				proto, op = string(name), o
			}
			return ok
		},
		OnHeader: func(key, value []byte) error {
			if r.cfg.CheckOrigin != nil && bytes.EqualFold(key, []byte("Origin")) && !r.cfg.CheckOrigin(string(value)) {
				return ws.RejectConnectionError(ws.RejectionStatus(http.StatusForbidden), ws.RejectionReason("origin not allowed"))
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if proto == "" {
				// RFC 6455 §4.2.2: fail rather than pick no subprotocol.
				return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusBadRequest), ws.RejectionReason(r.cfg.NoProtocol))
			}
			// The descriptor our poller will own is made before the
			// answer: at the open-files limit the client is refused
			// with 503 rather than upgraded and then dropped.
			var err error
			if fd, err = dupFD(conn); err != nil {
				r.log.Warn("refusing a connection: no descriptor to take it over", zap.Error(err))
				return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusServiceUnavailable), ws.RejectionReason("server at its connection limit, retry later"))
			}
			return nil, nil
		},
	}
	// A client sends nothing after its handshake until it has the answer
	// (RFC 6455 §4.1), so the upgrader's read buffer holds no frames.
	rw := struct {
		io.Reader
		io.Writer
	}{io.MultiReader(bytes.NewReader(head), conn), conn}
	_, err := u.Upgrade(rw)
	// From here the socket is fd's alone, out of Go's poller.
	conn.Close()
	if err != nil {
		r.log.Debug("handshake failed", zap.Stringer("remote", conn.RemoteAddr()), zap.Error(err))
		if fd >= 0 {
			unix.Close(fd)
		}
		return
	}
	r.register(fd, op, proto)
}

// dupFD duplicates conn's descriptor, non-blocking and close-on-exec, so
// the socket outlives conn.Close.
func dupFD(conn net.Conn) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no file descriptor", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, dupErr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// register opens fd's slot, lets the application attach its handler, and
// adds the fd to its poller.
func (r *Server) register(fd int, op ws.OpCode, proto string) {
	s, ok := r.slots.alloc(fd)
	if !ok || r.closing.Load() {
		if !ok {
			r.log.Error("fd beyond the open-files limit seen at start", zap.Int("fd", fd))
		}
		unix.Close(fd)
		return
	}
	p := r.pollerOf(fd)
	s.mu.Lock()
	gen := s.gen
	now := r.now()
	s.state, s.op, s.lastRead, s.lastPing = open, op, now, now
	s.due = p.wheel.add(r.nextDue(s), job{int32(fd), gen})
	s.mu.Unlock()

	h := r.cfg.Open(Conn{r: r, fd: int32(fd), gen: gen}, proto)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.h = h
	s.armed = s.events()
	ev := unix.EpollEvent{Events: s.armed, Fd: int32(fd), Pad: int32(gen)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		r.log.Error("epoll_ctl ADD", zap.Int("fd", fd), zap.Error(err))
		s.state = dead
		r.scheduleLocked(s, fd)
		return
	}
	s.registered = true
	r.updateLocked(s, fd) // Open may have sent or closed
}

// deliver queues a complete message for the connection's handler, and
// stops reading the connection while maxInbox messages wait.
func (r *Server) deliver(fd int, gen uint32, s *slot, msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen || s.state != open {
		return
	}
	s.inbox = append(s.inbox, msg)
	if len(s.inbox) >= maxInbox && !s.paused {
		s.paused = true
		r.updateLocked(s, fd)
	}
	r.scheduleLocked(s, fd)
}

func (r *Server) work() {
	for {
		j, ok := r.queue.pop()
		if !ok {
			return
		}
		r.run(j)
	}
}

// run hands a connection's waiting messages to its handler one by one;
// once the connection is dead and its inbox empty, it runs Closed and
// releases the slot and the fd.
func (r *Server) run(j job) {
	fd := int(j.fd)
	s := r.slots.at(fd)
	for {
		s.mu.Lock()
		if len(s.inbox) == 0 {
			if s.state != dead {
				s.scheduled = false
				s.mu.Unlock()
				return
			}
			h := s.h
			s.mu.Unlock()
			if h != nil {
				h.Closed()
			}
			s.mu.Lock()
			s.connState = connState{gen: s.gen + 1}
			s.mu.Unlock()
			unix.Close(fd)
			return
		}
		msg := s.inbox[0]
		s.inbox[0], s.inbox = nil, s.inbox[1:]
		if len(s.inbox) == 0 {
			s.inbox = nil
		}
		if s.paused && len(s.inbox) <= maxInbox/2 {
			s.paused = false
			r.updateLocked(s, fd)
		}
		h := s.h
		s.mu.Unlock()
		h.Handle(msg)
	}
}
