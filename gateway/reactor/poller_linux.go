//go:build linux

package reactor

import (
	"bytes"
	"errors"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// errPeerClosed stops parsing after the client's close frame.
var errPeerClosed = errors.New("peer sent close")

// poller is one epoll loop. It owns its connections' reads and parsers,
// flushes their queues when the socket drains, and runs their timers; it
// never blocks on anything but epoll_wait.
type poller struct {
	r      *Server
	epfd   int
	wakefd int // eventfd that stops the loop
	wheel  *wheel
	ticked uint32 // the last tick whose timers ran

	buf     []byte // the one read buffer of every connection of the poller
	scratch parser // the parser of a connection at a message boundary
	now     uint32 // tick of the current batch of events
}

func newPoller(r *Server, wheelSize int) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, err
	}
	now := r.now()
	return &poller{
		r:      r,
		epfd:   epfd,
		wakefd: wakefd,
		wheel:  newWheel(wheelSize, now),
		ticked: now,
		buf:    make([]byte, r.cfg.ReadBufferSize),
	}, nil
}

func (p *poller) run() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, p.timeout())
		if err != nil && err != unix.EINTR {
			p.r.log.Error("epoll_wait", zap.Error(err))
			return
		}
		p.now = p.r.now()
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == p.wakefd {
				return
			}
			p.event(ev)
		}
		p.expire()
	}
}

// stop makes run return and releases the poller's descriptors.
func (p *poller) stop() {
	var one [8]byte
	one[0] = 1
	_, _ = unix.Write(p.wakefd, one[:])
}

func (p *poller) closeFDs() {
	unix.Close(p.epfd)
	unix.Close(p.wakefd)
}

// timeout is the milliseconds epoll_wait may sleep: until the next tick.
func (p *poller) timeout() int {
	next := p.r.start.Add(time.Duration(p.ticked) * p.r.tick)
	return max(0, int((time.Until(next)+time.Millisecond-1)/time.Millisecond))
}

func (p *poller) event(ev unix.EpollEvent) {
	fd, gen := int(ev.Fd), uint32(ev.Pad)
	s := p.r.slots.at(fd)
	s.mu.Lock()
	if s.gen != gen || (s.state != open && s.state != closing) {
		s.mu.Unlock()
		return
	}
	if ev.Events&unix.EPOLLOUT != 0 && len(s.out) > 0 {
		p.r.flushLocked(s, fd)
	}
	done := s.closeDone()
	s.mu.Unlock()
	switch {
	case done:
		p.finalize(fd, gen, s)
	case ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0:
		p.read(fd, gen, s)
	case ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0:
		p.finalize(fd, gen, s) // reset while reads were paused
	}
}

// read takes one buffer of input and parses it. Level-triggered epoll
// reports the connection again if more is waiting.
func (p *poller) read(fd int, gen uint32, s *slot) {
	n, err := unix.Read(fd, p.buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if n <= 0 {
		p.finalize(fd, gen, s) // EOF or reset
		return
	}
	if t := p.r.cfg.Traffic; t != nil {
		t.In.Add(uint64(n))
	}
	s.mu.Lock()
	s.lastRead = p.now
	if s.discard {
		s.mu.Unlock()
		return
	}
	rd := s.rd
	if rd == nil {
		p.scratch = parser{op: s.op, max: p.r.cfg.MaxMessageSize}
		rd = &p.scratch
	}
	s.mu.Unlock()

	err = rd.feed(p.buf[:n], func(op ws.OpCode, payload []byte) error {
		return p.input(fd, gen, s, op, payload)
	})
	if err == nil && !rd.idle() && rd == &p.scratch {
		keep := p.scratch // a frame is partial: it needs its own parser
		rd = &keep
	}
	s.mu.Lock()
	if err != nil || rd.idle() {
		s.rd = nil
	} else {
		s.rd = rd
	}
	switch {
	case err == errPeerClosed:
		s.peerClosed = true
	case err != nil:
		s.discard = true
	}
	done := s.closeDone()
	s.mu.Unlock()
	if err != nil && err != errPeerClosed {
		code, reason := CloseFor(err)
		p.r.close(int32(fd), gen, code, reason)
	}
	if done {
		p.finalize(fd, gen, s)
	}
}

// input acts on one complete message or control frame. The payload lies
// in the shared buffer, so whatever outlives the call is copied. Once the
// connection is closing, only a close frame matters: deliver and send
// drop the rest.
func (p *poller) input(fd int, gen uint32, s *slot, op ws.OpCode, payload []byte) error {
	switch op {
	case ws.OpText, ws.OpBinary:
		p.r.deliver(fd, gen, s, bytes.Clone(payload))
	case ws.OpPing:
		p.r.send(int32(fd), gen, ws.OpPong, bytes.Clone(payload), false)
	case ws.OpClose:
		code, reason, err := ParseClose(payload)
		if err != nil {
			return err
		}
		p.r.close(int32(fd), gen, code, reason) // echo, unless we closed first
		return errPeerClosed
	}
	return nil // a pong only counts as activity
}

// finalize takes a connection out of epoll and hands it to a worker, which
// runs the handler's remaining messages, Closed, and closes the fd.
func (p *poller) finalize(fd int, gen uint32, s *slot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen || (s.state != open && s.state != closing) {
		return
	}
	s.state = dead
	_ = unix.Shutdown(fd, unix.SHUT_RDWR) // the client sees the end now, not when the worker gets to it
	clear(s.out)
	s.rd, s.out, s.off = nil, nil, 0
	if s.registered {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		s.registered = false
	}
	p.r.wakeLocked(s)
	p.r.scheduleLocked(s, fd)
}

// expire runs the timers of every tick up to now.
func (p *poller) expire() {
	for now := p.r.now(); before(p.ticked, now); {
		p.ticked++
		for _, j := range p.wheel.take(p.ticked) {
			p.timer(j, p.ticked)
		}
	}
}

// timer checks one connection whose wheel entry fired at tick t: it ends
// closing connections past their deadline, closes idle ones, drops those
// whose output has been stuck for WriteTimeout (with a close frame if the
// socket takes it), and sends heartbeats.
func (p *poller) timer(j job, t uint32) {
	fd := int(j.fd)
	s := p.r.slots.at(fd)
	s.mu.Lock()
	if s.gen != j.gen || s.due != t || (s.state != open && s.state != closing) {
		s.mu.Unlock()
		return // a stale entry
	}
	s.due = 0 // consumed; refiled below
	switch {
	case s.state == closing:
		if reached(t, s.closeBy) {
			p.r.flushLocked(s, fd) // a last try for a queued close frame; it never waits
			s.mu.Unlock()
			p.finalize(fd, j.gen, s)
			return
		}
	case reached(t, s.lastRead+p.r.idleTicks):
		code, reason := CloseFor(ErrIdleTimeout)
		p.r.closeLocked(s, fd, code, reason)
	case len(s.out) > 0 && reached(t, s.lastWrite+p.r.writeTicks):
		p.r.abandonLocked(s, fd)
		s.mu.Unlock()
		p.r.log.Info("dropping connection: writes stalled", zap.Int("fd", fd))
		p.finalize(fd, j.gen, s)
		return
	case reached(t, s.lastPing+p.r.pingTicks):
		if len(s.out) < p.r.cfg.SendQueue {
			p.r.writeLocked(s, fd, ws.OpPing, nil)
		}
		s.lastPing = t
	}
	s.due = p.wheel.add(p.r.nextDue(s), j)
	s.mu.Unlock()
}
