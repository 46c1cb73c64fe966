//go:build linux

package reactor

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/gobwas/ws"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// maxInbox is how many complete messages a connection may have waiting for
// its handler before the poller stops reading it, so a client that sends
// faster than it is served is slowed by TCP instead of growing memory.
const maxInbox = 32

// Slot states. A slot goes free → open → closing → dead → free; only the
// worker that runs Closed frees it, and only then closes the fd, so an fd
// number is never reused while its slot still belongs to a connection.
const (
	free    uint8 = iota
	open          // upgraded and registered with its poller
	closing       // close frame queued or sent; only a close frame is read
	dead          // out of epoll; Closed is pending, then the fd is closed
)

// slot is one connection, in a table indexed by fd. mu guards every field;
// the parser behind rd is used only by the connection's poller. It is kept
// at 128 bytes, so a page of slots is exactly a 32 KiB allocation.
type slot struct {
	mu sync.Mutex
	connState
}

type connState struct {
	gen        uint32 // bumped on release: stale handles and events miss
	state      uint8
	op         ws.OpCode // the subprotocol's data opcode
	registered bool      // added to epoll
	paused     bool      // EPOLLIN off: inbox is full
	scheduled  bool      // in the run queue or on a worker
	peerClosed bool      // the client's close frame arrived
	discard    bool      // input broke the protocol; the rest is skipped
	armed      uint32    // epoll events registered

	// Ticks of the timer wheel.
	due       uint32 // the live wheel entry's tick
	lastRead  uint32
	lastPing  uint32
	lastWrite uint32 // last write progress, while out is non-empty
	closeBy   uint32 // closing: ended at this tick whatever happens

	off   int32    // bytes of out[0] already written (a frame is far under 2 GiB)
	rd    *parser  // partial input; nil at a message boundary
	out   []frame  // queued output; out[0] has off bytes written
	inbox [][]byte // messages waiting for a worker
	h     Handler
	wake  chan struct{} // closed on write progress or close; nil if no one waits
}

// frame is one queued output frame: its header inline, its payload shared
// with the caller (fan-out sends one payload to many connections).
type frame struct {
	hdr  [10]byte
	hlen uint8
	data []byte
}

// closeDone reports whether the closing handshake is complete: both close
// frames have gone, so the connection can end (RFC 6455 §7.1.1).
func (s *slot) closeDone() bool {
	return s.state == closing && s.peerClosed && len(s.out) == 0
}

// events is the epoll interest the slot needs now.
func (s *slot) events() uint32 {
	var ev uint32
	if !s.paused || s.state != open {
		ev |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if len(s.out) > 0 {
		ev |= unix.EPOLLOUT
	}
	return ev
}

const pageBits = 8

// table maps fds to slots in pages allocated on first use and never freed,
// so a *slot stays valid and lookups take no lock.
type table struct {
	mu    sync.Mutex
	pages []atomic.Pointer[[1 << pageBits]slot]
}

func newTable(maxFD int) *table {
	return &table{pages: make([]atomic.Pointer[[1 << pageBits]slot], maxFD>>pageBits+1)}
}

// at returns the slot of an fd that alloc has seen.
func (t *table) at(fd int) *slot {
	return &t.pages[fd>>pageBits].Load()[fd&(1<<pageBits-1)]
}

// alloc returns fd's slot, creating its page; false if fd is beyond the
// open-files limit the table was sized for.
func (t *table) alloc(fd int) (*slot, bool) {
	if fd>>pageBits >= len(t.pages) {
		return nil, false
	}
	pg := &t.pages[fd>>pageBits]
	if pg.Load() == nil {
		t.mu.Lock()
		if pg.Load() == nil {
			pg.Store(new([1 << pageBits]slot))
		}
		t.mu.Unlock()
	}
	return t.at(fd), true
}

// Conn is the application's handle on a connection. It names the slot and
// its generation, so a handle kept after its connection ended is harmless
// even when the fd serves a new connection. Its methods are safe from any
// goroutine.
type Conn struct {
	r   *Server
	fd  int32
	gen uint32
}

// Send queues a data frame and never blocks; a connection whose queue is
// full is closed with 1008 as a slow consumer.
func (c Conn) Send(p []byte) { c.r.send(c.fd, c.gen, 0, p, false) }

// SendWait queues a data frame, waiting while the queue is full; false
// means the connection is closing.
func (c Conn) SendWait(p []byte) bool { return c.r.send(c.fd, c.gen, 0, p, true) }

// Close sends a close frame with code and reason after what is queued, then
// ends the connection once the client answers it or closes, or after
// WriteTimeout.
func (c Conn) Close(code int, reason string) {
	c.r.close(c.fd, c.gen, ws.StatusCode(code), reason)
}

// RemoteAddr is the peer's address, or "" once the connection has ended.
func (c Conn) RemoteAddr() string {
	s := c.r.slots.at(int(c.fd))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != c.gen || s.state == free {
		return ""
	}
	sa, err := unix.Getpeername(int(c.fd))
	if err != nil {
		return ""
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return "fd " + strconv.Itoa(int(c.fd))
}

// send queues p as a frame of op (0: the connection's data opcode).
func (r *Server) send(fd int32, gen uint32, op ws.OpCode, p []byte, wait bool) bool {
	s := r.slots.at(int(fd))
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.gen != gen || s.state != open {
			return false
		}
		if len(s.out) < r.cfg.SendQueue {
			break
		}
		if !wait {
			r.log.Warn("closing slow consumer", zap.Int32("fd", fd), zap.Int("queued", len(s.out)))
			s.dropUnstarted()
			r.closeLocked(s, int(fd), ws.StatusPolicyViolation, ReasonSlowConsumer)
			return false
		}
		if s.wake == nil {
			s.wake = make(chan struct{})
		}
		w := s.wake
		s.mu.Unlock()
		<-w
		s.mu.Lock()
	}
	if op == 0 {
		op = s.op
	}
	r.writeLocked(s, int(fd), op, p)
	return true
}

// close starts the closing handshake of a connection that is open.
func (r *Server) close(fd int32, gen uint32, code ws.StatusCode, reason string) {
	s := r.slots.at(int(fd))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == gen {
		r.closeLocked(s, int(fd), code, reason)
	}
}

func (r *Server) closeLocked(s *slot, fd int, code ws.StatusCode, reason string) {
	if s.state != open {
		return
	}
	s.state = closing
	if r.cfg.OnClose != nil {
		r.cfg.OnClose(code, reason)
	}
	// Closing the socket at once could reset it with the close frame
	// unread; the client gets WriteTimeout to read it and answer.
	s.closeBy = r.now() + r.writeTicks
	r.writeLocked(s, fd, ws.OpClose, ws.NewCloseFrameBody(code, truncate(reason)))
	if len(s.out) == 0 {
		_ = unix.Shutdown(fd, unix.SHUT_WR)
	}
	r.wakeLocked(s)
	r.updateLocked(s, fd)
}

// dropUnstarted empties the queue of a slow consumer. What is queued is
// refetched on resume; only a frame already partly written must be
// finished, so that a close frame can follow it.
func (s *slot) dropUnstarted() {
	if s.off > 0 {
		clear(s.out[1:])
		s.out = s.out[:1]
	} else {
		s.out = nil
	}
}

// abandonLocked gives up on a connection whose writes stalled: it closes
// it as a slow consumer and writes what the socket takes at once, never
// waiting; the caller then ends the connection. A socket that took nothing
// for WriteTimeout mostly still takes the few bytes of the rest of the
// frame in progress and the close frame (room too small for EPOLLOUT);
// when it does not, the client sees the connection end without one.
func (r *Server) abandonLocked(s *slot, fd int) {
	s.dropUnstarted()
	r.closeLocked(s, fd, ws.StatusPolicyViolation, ReasonSlowConsumer)
	r.flushLocked(s, fd)
}

// truncate cuts a close reason to what fits a control frame, on a rune
// boundary.
func truncate(reason string) string {
	const max = ws.MaxControlFramePayloadSize - 2
	if len(reason) <= max {
		return reason
	}
	i := max
	for i > 0 && !utf8.RuneStart(reason[i]) {
		i--
	}
	return reason[:i]
}

// writeLocked sends a frame: straight to the socket when nothing is queued
// before it, queueing whatever the socket does not take and arming
// EPOLLOUT for the rest.
func (r *Server) writeLocked(s *slot, fd int, op ws.OpCode, p []byte) {
	f := frame{data: p}
	f.hlen = uint8(putHeader(f.hdr[:], op, len(p)))
	if len(s.out) > 0 {
		s.out = append(s.out, f)
		return
	}
	n, err := writev(fd, [][]byte{f.hdr[:f.hlen], p})
	r.wrote(n)
	switch {
	case err == nil && n == int(f.hlen)+len(p):
		return
	case err != nil && err != unix.EAGAIN && err != unix.EINTR:
		r.brokenLocked(s, fd)
		return
	}
	s.out = append(s.out, f)
	s.off = int32(max(n, 0))
	s.lastWrite = r.now()
	r.updateLocked(s, fd)
}

// flushLocked writes queued frames, several per writev, until the queue is
// empty or the socket is full.
func (r *Server) flushLocked(s *slot, fd int) {
	const batch = maxIov / 2 // frames per writev
	var iov [maxIov][]byte
	for len(s.out) > 0 {
		v, total := iov[:0], 0
		skip := int(s.off)
		for i := range min(len(s.out), batch) {
			f := &s.out[i]
			for _, b := range [2][]byte{f.hdr[:f.hlen], f.data} {
				if skip >= len(b) {
					skip -= len(b)
					continue
				}
				v = append(v, b[skip:])
				total += len(b) - skip
				skip = 0
			}
		}
		n, err := writev(fd, v)
		r.wrote(n)
		if err == unix.EAGAIN || err == unix.EINTR {
			break
		}
		if err != nil {
			r.brokenLocked(s, fd)
			return
		}
		r.consume(s, n)
		s.lastWrite = r.now()
		if n < total {
			break // the socket is full
		}
	}
	r.wakeLocked(s)
	if len(s.out) == 0 {
		s.out, s.off = nil, 0
		if s.state == closing {
			_ = unix.Shutdown(fd, unix.SHUT_WR) // the close frame is out
		}
	}
	r.updateLocked(s, fd)
}

// maxIov is the most buffers one writev takes here.
const maxIov = 64

// wrote counts n bytes written, if the server counts traffic.
func (r *Server) wrote(n int) {
	if t := r.cfg.Traffic; t != nil && n > 0 {
		t.Out.Add(uint64(n))
	}
}

// writev writes up to maxIov buffers with one writev(2). Unlike
// unix.Writev it keeps the iovecs on the stack, so a send does not
// allocate.
func writev(fd int, bufs [][]byte) (int, error) {
	var iov [maxIov]unix.Iovec
	n := 0
	for _, b := range bufs {
		if len(b) > 0 {
			iov[n].Base = &b[0]
			iov[n].SetLen(len(b))
			n++
		}
	}
	w, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
	if errno != 0 {
		return 0, errno
	}
	return int(w), nil
}

// consume drops n written bytes from the head of the queue.
func (r *Server) consume(s *slot, n int) {
	for n > 0 {
		size := int(s.out[0].hlen) + len(s.out[0].data) - int(s.off)
		if n < size {
			s.off += int32(n)
			return
		}
		n -= size
		s.out[0], s.out, s.off = frame{}, s.out[1:], 0
	}
}

// brokenLocked handles a failed write: the peer is gone, so output is
// dropped and the connection ends at the next tick, if epoll does not
// report it first.
func (r *Server) brokenLocked(s *slot, fd int) {
	clear(s.out)
	s.out, s.off = nil, 0
	if s.state == open {
		s.state = closing
	}
	s.closeBy = r.now()
	r.wakeLocked(s)
	r.updateLocked(s, fd)
}

func (r *Server) wakeLocked(s *slot) {
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

// updateLocked brings the epoll interest and the wheel entry in line with
// the slot: EPOLLOUT while output is queued, EPOLLIN unless paused, and a
// wheel entry no later than the slot's next deadline.
func (r *Server) updateLocked(s *slot, fd int) {
	if !s.registered {
		return
	}
	p := r.pollerOf(fd)
	if ev := s.events(); ev != s.armed {
		e := unix.EpollEvent{Events: ev, Fd: int32(fd), Pad: int32(s.gen)}
		if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &e); err != nil {
			r.log.Error("epoll_ctl MOD", zap.Int("fd", fd), zap.Error(err))
		}
		s.armed = ev
	}
	if due := r.nextDue(s); before(due, s.due) {
		s.due = p.wheel.add(due, job{int32(fd), s.gen})
	}
}

// nextDue is the tick of the slot's next timer check.
func (r *Server) nextDue(s *slot) uint32 {
	if s.state != open {
		return s.closeBy
	}
	due := earliest(s.lastPing+r.pingTicks, s.lastRead+r.idleTicks)
	if len(s.out) > 0 {
		due = earliest(due, s.lastWrite+r.writeTicks)
	}
	return due
}

// scheduleLocked puts the connection in the run queue unless it is there.
func (r *Server) scheduleLocked(s *slot, fd int) {
	if !s.scheduled {
		s.scheduled = true
		r.queue.push(job{int32(fd), s.gen})
	}
}
