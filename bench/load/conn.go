package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/parley-chat/parley/bench/verify"
	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// conn is one simulated user: a connection subscribed to its rooms that
// reconnects and resumes whenever it is lost, as a real client would.
type conn struct {
	w     *Worker
	user  string
	url   string
	src   net.Addr // nil: any
	rooms []string
	token string // set by Worker.Prepare

	mu      sync.Mutex
	cur     *session      // the published session: every room subscribed; nil while down
	pending *session      // the session being subscribed; events of any other are stale
	ready   chan struct{} // closed once cur is published; replaced when it is lost
	tracks  map[string]*track
	// While resuming after a drop, droppedAt is when it happened and behind
	// counts rooms not yet back at the head their resubscribe reported.
	droppedAt time.Time
	behind    int
}

// session is one connection attempt. ended and publication are decided
// under conn.mu, so a session that ends while subscribing is never
// published, and one that ends once published is always noticed.
type session struct {
	c       *client.Client
	ended   bool
	dropped bool // we aborted it on purpose (Traffic.DisruptAt): not a failure
}

// track is one room as this user receives it.
type track struct {
	stream *verify.Stream // nil until the first Subscribe answered
	top    uint64         // highest seq delivered: where a resume continues
	live   bool           // subscribed on the current session
	held   []held         // arrived before the Subscribe answer was handled
	// While resuming: the head to reach, and whether it is still ahead.
	target   uint64
	catching bool
}

type held struct {
	m  *pb.Message
	at time.Time
}

func newConn(w *Worker, p ClientPlan) *conn {
	cn := &conn{w: w, user: p.User, url: w.plan.URLs[p.URL], rooms: p.Rooms, ready: make(chan struct{}), tracks: make(map[string]*track, len(p.Rooms))}
	if p.Source != "" {
		cn.src = &net.TCPAddr{IP: net.ParseIP(p.Source)}
	}
	for _, r := range p.Rooms {
		cn.tracks[r] = &track{}
	}
	return cn
}

// connect dials, subscribes every room (resuming after the last seq
// received, if any) and publishes the session for senders.
func (cn *conn) connect(ctx context.Context) error {
	cn.mu.Lock()
	for _, t := range cn.tracks {
		t.live, t.held, t.catching = false, nil, false
	}
	if !cn.droppedAt.IsZero() {
		cn.behind = len(cn.rooms)
	}
	cn.mu.Unlock()

	m := cn.w.measure()
	start := time.Now()
	c, err := client.Dial(ctx, cn.url, client.Options{Token: cn.token, LocalAddr: cn.src, EventBuffer: cn.w.plan.EventBuffer})
	if err != nil {
		return err
	}
	m.latency[Connect].Record(time.Since(start))
	s := &session{c: c}
	cn.mu.Lock()
	cn.pending = s
	cn.mu.Unlock()
	go cn.read(s)
	for _, room := range cn.rooms {
		if err := cn.subscribe(ctx, c, room); err != nil {
			cn.mu.Lock()
			cn.pending = nil // what it delivered is fetched again by the next attempt's resume
			cn.mu.Unlock()
			c.Abort()
			return fmt.Errorf("subscribe %s: %w", room, err)
		}
	}

	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.pending = nil
	if s.ended {
		return errors.New("connection lost while subscribing")
	}
	cn.cur = s
	close(cn.ready)
	cn.w.up.Add(1)
	m.add(Connected, 1)
	if !cn.droppedAt.IsZero() {
		now := time.Now()
		m.latency[Resume].Record(now.Sub(cn.droppedAt))
		cn.caughtUp(now)
	}
	return nil
}

// subscribe starts delivery of one room on c.
func (cn *conn) subscribe(ctx context.Context, c *client.Client, room string) error {
	cn.mu.Lock()
	t := cn.tracks[room]
	var after *uint64
	if t.stream != nil {
		a := t.top
		after = &a
	}
	cn.mu.Unlock()

	start := time.Now()
	sub, err := c.Subscribe(ctx, room, after)
	if err != nil {
		return err
	}
	cn.w.measure().latency[Subscribe].Record(time.Since(start))

	cn.mu.Lock()
	defer cn.mu.Unlock()
	if t.stream == nil {
		// A live subscription delivers from head+1 on.
		t.stream = cn.w.v.Open(cn.user, room, sub.HeadSeq+1)
		t.top = sub.HeadSeq
	}
	t.live = true
	if !cn.droppedAt.IsZero() {
		t.target = sub.HeadSeq
		t.catching = t.top < t.target
		if !t.catching {
			cn.behind--
		}
	}
	for _, h := range t.held {
		cn.deliver(t, h.m, h.at)
	}
	t.held = nil
	return nil
}

// read handles s's pushed frames until the connection ends.
func (cn *conn) read(s *session) {
	for f := range s.c.Events() {
		at := time.Now()
		m := f.GetMessage()
		if m == nil {
			if e := f.GetError(); e != nil {
				cn.w.fail("event", &client.ServerError{Code: e.GetCode(), Message: e.GetMessage()})
			}
			continue // other pushed events (typing, receipts, presence) are not measured
		}
		cn.mu.Lock()
		switch t := cn.tracks[m.Room]; {
		case s != cn.cur && s != cn.pending:
			// A failed attempt's leftovers: the resume fetches them again.
		case t == nil:
			cn.w.fail("event", fmt.Errorf("message for room %s, which %s never subscribed", m.Room, cn.user))
		case !t.live:
			t.held = append(t.held, held{m, at})
		default:
			cn.deliver(t, m, at)
		}
		cn.mu.Unlock()
	}
	cn.lost(s)
}

// deliver records one delivery. Caller holds cn.mu.
func (cn *conn) deliver(t *track, m *pb.Message, at time.Time) {
	t.stream.Deliver(m.Seq, m.Sender, m.ClientMsgId)
	t.top = max(t.top, m.Seq)
	cn.w.delivered(m, at)
	if t.catching && t.top >= t.target {
		t.catching = false
		cn.behind--
		cn.caughtUp(at)
	}
}

// caughtUp ends a resume once the session is published and every room is
// back at its head. Caller holds cn.mu.
func (cn *conn) caughtUp(at time.Time) {
	if cn.cur == nil || cn.behind > 0 || cn.droppedAt.IsZero() {
		return
	}
	m := cn.w.measure()
	m.latency[CatchUp].Record(at.Sub(cn.droppedAt))
	m.add(CaughtUp, 1)
	cn.droppedAt = time.Time{}
	cn.w.resuming.Add(-1)
}

// startResume marks the start of a resume. Caller holds cn.mu.
func (cn *conn) startResume(at time.Time) {
	if cn.droppedAt.IsZero() {
		cn.droppedAt = at
		cn.w.resuming.Add(1)
	}
}

// drop aborts the connection on purpose, returning false if it was down.
func (cn *conn) drop(at time.Time) bool {
	cn.mu.Lock()
	s := cn.cur
	if s != nil {
		s.dropped = true
		cn.startResume(at)
	}
	cn.mu.Unlock()
	if s == nil {
		return false
	}
	s.c.Abort()
	return true
}

// lost handles the end of session s: if it was the published one, the
// user reconnects and resumes, unless the worker is closing.
func (cn *conn) lost(s *session) {
	cn.mu.Lock()
	s.ended = true
	if cn.cur != s {
		cn.mu.Unlock()
		return // never published: connect reports the failure
	}
	cn.cur = nil
	cn.ready = make(chan struct{})
	cn.startResume(time.Now())
	cn.mu.Unlock()

	cn.w.up.Add(-1)
	if cn.w.closing.Load() {
		return
	}
	if !s.dropped {
		cn.w.fail("connection", s.c.Err())
	}
	go cn.reconnect()
}

// Reconnects back off from reconnectBackoff to maxBackoff, reconnectAttempts times.
const (
	reconnectAttempts = 10
	reconnectBackoff  = 100 * time.Millisecond
	maxBackoff        = 2 * time.Second
)

func (cn *conn) reconnect() {
	w := cn.w
	for attempt := 1; ; attempt++ {
		err := w.dial(w.ctx, cn)
		if err == nil {
			w.measure().add(Reconnected, 1)
			return
		}
		if w.ctx.Err() != nil {
			return
		}
		w.fail("reconnect", err)
		if attempt == reconnectAttempts || !Sleep(w.ctx, backoff(reconnectBackoff, attempt)) {
			cn.mu.Lock()
			cn.droppedAt = time.Time{} // given up: no longer resuming
			cn.mu.Unlock()
			w.resuming.Add(-1)
			return
		}
	}
}

// current returns the published session, waiting for one.
func (cn *conn) current(ctx context.Context) (*session, error) {
	for {
		cn.mu.Lock()
		s, ready := cn.cur, cn.ready
		cn.mu.Unlock()
		if s != nil {
			return s, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// errDropped is a request lost with a connection we dropped on purpose.
var errDropped = errors.New("connection dropped by the bench")

// do makes one request on the published session, within requestTimeout.
func (cn *conn) do(ctx context.Context, req func(context.Context, *client.Client) error) error {
	s, err := cn.current(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err = req(ctx, s.c); err != nil {
		cn.mu.Lock()
		if s.dropped {
			err = errDropped
		}
		cn.mu.Unlock()
	}
	return err
}

// close ends the connection normally, if it is up.
func (cn *conn) close() {
	cn.mu.Lock()
	s := cn.cur
	cn.mu.Unlock()
	if s != nil {
		_ = s.c.Close()
	}
}
