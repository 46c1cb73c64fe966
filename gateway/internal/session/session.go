// Package session runs the client protocol of a gateway's connections: one
// Session per connection decodes its frames, authenticates it, checks
// rate limits and membership, and answers each request (send, subscribe,
// history, typing, mark read, sync, ping) with a result or an error frame.
// It hands sends to the processors (Sender), room subscriptions to the
// hubs (Hubs) and the user to the local users (Users); it owns no room or
// user state itself.
//
// Invariants: a request gets exactly one answer, carrying its id (a send's
// answer comes when the processor decided it); nothing but Authenticate is
// served before authentication, and a connection not authenticated within
// AuthTimeout is closed; bad input gets an error frame, never a crash.
package session

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/gateway/internal/fanout"
	"github.com/parley-chat/parley/gateway/internal/follow"
	"github.com/parley-chat/parley/gateway/internal/outbox"
	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/gateway/internal/transport"
	"github.com/parley-chat/parley/internal/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// Deps are what sessions work with.
type Deps struct {
	Hubs     Hubs
	Users    Users
	Sends    Sender
	Verifier Verifier
	Store    Store
	RoomLog  RoomLog
	Signals  push.Publisher // typing and read receipts to the room's other gateways
}

// Sessions opens sessions and holds the open ones by id: a map under a
// lock, which costs a fraction of a sync.Map's memory per entry.
type Sessions struct {
	Deps
	cfg  Config
	log  *zap.Logger
	next atomic.Uint64

	metrics *metrics

	mu sync.RWMutex
	m  map[uint64]*Session
}

// New makes the gateway's sessions.
func New(deps Deps, log *zap.Logger, cfg Config) *Sessions {
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = protocol.DefaultMaxBodySize
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = 10 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	return &Sessions{Deps: deps, cfg: cfg, log: log, metrics: newMetrics(), m: make(map[uint64]*Session)}
}

// Open starts the session of a new connection speaking codec.
func (ss *Sessions) Open(c transport.Conn, codec protocol.Codec) *Session {
	s := &Session{ss: ss, seq: ss.next.Add(1), conn: c, codec: codec}
	s.authTimer = time.AfterFunc(ss.cfg.AuthTimeout, func() {
		if s.UserID() == "" {
			s.logger().Info("closing: no authentication in time")
			c.Close(protocol.ClosePolicy, "authenticate first")
		}
	})
	ss.mu.Lock()
	ss.m[s.seq] = s
	ss.mu.Unlock()
	ss.metrics.opened.Add(1)
	return s
}

// All returns the sessions open now.
func (ss *Sessions) All() []*Session {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	return slices.Collect(maps.Values(ss.m))
}

// Count is the number of open sessions.
func (ss *Sessions) Count() int {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	return len(ss.m)
}

// ReasonRevoked is the close reason of connections whose login session was
// revoked (close code 1008).
const ReasonRevoked = "session revoked"

// CloseLogin closes every connection authenticated with a token of the
// login session login. The revocation must already be visible to the
// Verifier: a connection authenticating concurrently is then either
// refused by it or found here (authenticate verifies and records its
// login under one lock). It walks every connection: revocations are rare.
func (ss *Sessions) CloseLogin(login string) {
	if login == "" {
		return
	}
	for _, s := range ss.All() {
		s.mu.Lock()
		match := s.login == login
		s.mu.Unlock()
		if match {
			ss.log.Info("closing: login session revoked", zap.String("session", s.id()))
			s.conn.Close(protocol.ClosePolicy, ReasonRevoked)
		}
	}
}

// Session is one client connection's protocol state. Handle runs frames
// one at a time; hubs and users push to it concurrently through
// conn.Send, which never blocks.
type Session struct {
	ss    *Sessions
	seq   uint64 // the count of sessions when it opened; see id
	conn  transport.Conn
	codec protocol.Codec

	authTimer *time.Timer // until authenticated; nil after, to free it

	mu     sync.Mutex
	local  *follow.User  // the user on this gateway, once authenticated
	login  string        // the token's login session (auth.Claims.SessionID), set with local
	subs   []*fanout.Hub // the rooms subscribed, a few per connection
	closed bool
}

// id names the session across the deployment: <gateway>-<seq in base 36>.
// It is made when needed rather than kept, like the logger.
func (s *Session) id() string { return s.ss.cfg.GatewayID + "-" + strconv.FormatUint(s.seq, 36) }

// UserID is the authenticated user, or "".
func (s *Session) UserID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.local == nil {
		return ""
	}
	return s.local.ID()
}

// Close closes the connection with code and reason.
func (s *Session) Close(code int, reason string) { s.conn.Close(code, reason) }

// logger names the session and its user. It is made per call: sessions
// log rarely, and a child logger kept per connection would cost more
// memory than all the rest of an idle connection. Never call it under mu.
func (s *Session) logger() *zap.Logger {
	if user := s.UserID(); user != "" {
		return s.ss.log.With(zap.String("session", s.id()), zap.String("user", user))
	}
	return s.ss.log.With(zap.String("session", s.id()))
}

// Push queues a pushed frame without blocking.
func (s *Session) Push(f push.Frame) {
	if frame := f.Encoded(s.codec); frame != nil {
		s.ss.metrics.pushed(f)
		s.conn.Send(frame)
	}
}

// PushWait queues a frame of a catch-up, waiting for queue space; false
// means the connection is closing.
func (s *Session) PushWait(f push.Frame) bool {
	frame := f.Encoded(s.codec)
	if frame != nil {
		s.ss.metrics.pushed(f)
	}
	return frame == nil || s.conn.SendWait(frame)
}

// send encodes and queues an answer.
func (s *Session) send(f *pb.ServerFrame) {
	data, err := s.codec.EncodeServer(f)
	if err != nil {
		s.logger().Error("encode failed", zap.Error(err))
		return
	}
	s.ss.metrics.framesOut[outAnswer].Add(1)
	s.conn.Send(data)
}

func (s *Session) fail(id uint64, e *pb.Error) {
	s.ss.metrics.failed(e.Code)
	s.logger().Info("request failed", zap.Uint64("id", id), zap.Stringer("code", e.Code), zap.String("message", e.Message))
	s.send(protocol.ErrorFrame(id, e))
}

// ok answers a request that has no other result.
func (s *Session) ok(id uint64) {
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_Ok{Ok: &pb.Ok{}}})
}

// Handle decodes and runs one client frame.
func (s *Session) Handle(data []byte) {
	f := new(pb.ClientFrame)
	if err := s.codec.DecodeClient(data, f); err != nil {
		s.ss.metrics.requests[kindMalformed].Add(1)
		s.fail(0, protocol.Errorf(pb.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "%v", err))
		return
	}
	s.ss.metrics.requests[kindOf(f)].Add(1)
	if auth, ok := f.Kind.(*pb.ClientFrame_Auth); ok {
		s.authenticate(f.Id, auth.Auth)
		return
	}
	s.mu.Lock()
	local := s.local
	s.mu.Unlock()
	if local == nil && f.Kind != nil {
		s.fail(f.Id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "authenticate first"))
		return
	}
	var user string
	if local != nil {
		user = local.ID()
		allow := local.Limits().AllowRequest
		if _, ok := f.Kind.(*pb.ClientFrame_Send); ok {
			allow = local.Limits().AllowSend
		}
		if !allow(&s.ss.cfg.Limits) {
			s.fail(f.Id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_RATE_LIMITED, "too many requests, slow down"))
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.ss.cfg.RequestTimeout)
	defer cancel()
	switch k := f.Kind.(type) {
	case *pb.ClientFrame_Send:
		s.sendMessage(f.Id, user, k.Send)
	case *pb.ClientFrame_Subscribe:
		s.subscribe(ctx, f.Id, user, k.Subscribe)
	case *pb.ClientFrame_Unsubscribe:
		s.unsubscribe(f.Id, k.Unsubscribe.GetRoom())
	case *pb.ClientFrame_History:
		s.history(ctx, f.Id, user, k.History)
	case *pb.ClientFrame_Typing:
		s.typing(ctx, f.Id, user, k.Typing)
	case *pb.ClientFrame_MarkRead:
		s.markRead(ctx, f.Id, user, k.MarkRead)
	case *pb.ClientFrame_Sync:
		s.sync(ctx, f.Id, user, k.Sync)
	case *pb.ClientFrame_Ping:
		s.send(&pb.ServerFrame{Id: f.Id, Kind: &pb.ServerFrame_Pong{Pong: &pb.Pong{ClientTime: k.Ping.GetClientTime(), ServerTime: time.Now().UnixMilli()}}})
	default:
		s.fail(f.Id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNKNOWN_FRAME, "frame holds no known request"))
	}
}

func (s *Session) authenticate(id uint64, a *pb.Authenticate) {
	if s.UserID() != "" {
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_ALREADY_AUTHENTICATED, "connection is already authenticated"))
		return
	}
	// Verified under mu: a revocation of the login arriving meanwhile is
	// either seen by Verify or finds s.login set (Sessions.CloseLogin).
	s.mu.Lock()
	claims, err := s.ss.Verifier.Verify(a.GetToken())
	var timer *time.Timer
	var local *follow.User
	if err == nil {
		local = s.ss.Users.Acquire(claims.User)
		s.local, s.login = local, claims.SessionID
		timer, s.authTimer = s.authTimer, nil
	}
	s.mu.Unlock()
	if err != nil {
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_AUTH_FAILED, "invalid, expired or revoked token"))
		return
	}
	timer.Stop()
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_Authenticated{Authenticated: &pb.Authenticated{
		UserId: claims.User, SessionId: s.id(), ServerTime: time.Now().UnixMilli(),
	}}})
	s.ss.Users.Join(s, local)
}

// sendMessage hands a message to the processor owning its room. The
// answer (SendAck or Error) comes once the message is stored in CHAT_MSG,
// or rejected.
func (s *Session) sendMessage(id uint64, user string, m *pb.SendMessage) {
	if e := protocol.ValidateSend(m, s.ss.cfg.MaxBodySize); e != nil {
		s.fail(id, e)
		return
	}
	start := time.Now()
	s.ss.Sends.Send(outbox.FromClient(user, m), func(r *pb.SendResult) {
		s.ss.metrics.sendSeconds.Observe(time.Since(start).Seconds())
		s.onResult(id, r)
	})
}

// onResult answers send request id once the processor decided it.
func (s *Session) onResult(id uint64, r *pb.SendResult) {
	if r.Error != nil {
		s.fail(id, r.Error)
		return
	}
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_Ack{Ack: &pb.SendAck{
		Room: r.Room, ClientMsgId: r.ClientMsgId, Seq: r.Seq, SentAt: r.SentAt, Duplicate: r.Duplicate,
	}}})
}

// checkMember answers whether user may read room; a nil error means yes.
func (s *Session) checkMember(ctx context.Context, room, user string) *pb.Error {
	if e := protocol.ValidRoom(room); e != nil {
		return e
	}
	if _, err := s.ss.Store.Member(ctx, room, user); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return protocol.Errorf(pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND, "room %s does not exist or you are not a member", room)
		}
		s.logger().Warn("membership check failed", zap.String("room", room), zap.Error(err))
		return protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "membership check failed, retry")
	}
	return nil
}

func (s *Session) subscribe(ctx context.Context, id uint64, user string, sub *pb.Subscribe) {
	room := sub.GetRoom()
	if e := s.checkMember(ctx, room, user); e != nil {
		s.fail(id, e)
		return
	}
	s.leave(room) // a second Subscribe restarts delivery from its after_seq
	h, err := s.ss.Hubs.Acquire(ctx, room)
	if err != nil {
		s.logger().Warn("room hub failed", zap.String("room", room), zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "room unavailable, retry"))
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.ss.Hubs.Release(h)
		return
	}
	s.subs = append(s.subs, h)
	s.mu.Unlock()
	var after *uint64
	if sub.AfterSeq != nil {
		a := sub.GetAfterSeq()
		after = &a
	}
	if err := h.Join(ctx, s, id, after); err != nil {
		// A gap we could not fill: better the client reconnects and
		// resumes than sees a hole.
		s.logger().Warn("catch-up failed", zap.String("room", room), zap.Error(err))
		s.conn.Close(protocol.CloseInternal, "catch-up failed, resume again")
	}
}

// leave ends this session's subscription to room, if any.
func (s *Session) leave(room string) {
	s.mu.Lock()
	i := s.hubIndex(room)
	var h *fanout.Hub
	if i >= 0 {
		h = s.subs[i]
		s.subs = slices.Delete(s.subs, i, i+1)
	}
	s.mu.Unlock()
	if h != nil {
		h.Leave(s)
		s.ss.Hubs.Release(h)
	}
}

// hubIndex is the position of room's hub in subs, or -1. Under mu.
func (s *Session) hubIndex(room string) int {
	return slices.IndexFunc(s.subs, func(h *fanout.Hub) bool { return h.Room() == room })
}

// Dropped ends the session's subscription through h, if it still holds it
// (the member left or was removed from the room).
func (s *Session) Dropped(h *fanout.Hub) {
	s.mu.Lock()
	i := slices.Index(s.subs, h)
	held := i >= 0
	if held {
		s.subs = slices.Delete(s.subs, i, i+1)
	}
	s.mu.Unlock()
	if held {
		s.ss.Hubs.Release(h)
	}
}

func (s *Session) unsubscribe(id uint64, room string) {
	s.leave(room)
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_Unsubscribed{Unsubscribed: &pb.Unsubscribed{Room: room}}})
}

func (s *Session) history(ctx context.Context, id uint64, user string, q *pb.HistoryRequest) {
	room := q.GetRoom()
	if e := s.checkMember(ctx, room, user); e != nil {
		s.fail(id, e)
		return
	}
	page, err := historyPage(ctx, s.ss.RoomLog, room, q.BeforeSeq, q.AfterSeq, protocol.HistoryLimit(q.GetLimit()))
	if err != nil {
		s.logger().Warn("history failed", zap.String("room", room), zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "history unavailable, retry"))
		return
	}
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_History{History: page}})
}

// typing relays a typing signal to the room's other members over core
// NATS: never stored, gone if nobody listens. Clients show it for a few
// seconds and resend every 3 s while the user types.
func (s *Session) typing(ctx context.Context, id uint64, user string, t *pb.Typing) {
	room := t.GetRoom()
	if e := protocol.ValidRoom(room); e != nil {
		s.fail(id, e)
		return
	}
	if !s.ss.Users.AllowTyping(user) {
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_RATE_LIMITED, "typing: resend every 3 s at most"))
		return
	}
	// A subscription was checked when it was made; skip the store then.
	s.mu.Lock()
	subscribed := s.hubIndex(room) >= 0
	s.mu.Unlock()
	if !subscribed {
		if e := s.checkMember(ctx, room, user); e != nil {
			s.fail(id, e)
			return
		}
	}
	s.ss.Signals.Publish(bus.RoomSignals(room), &pb.ServerFrame{Kind: &pb.ServerFrame_Typing{Typing: &pb.TypingEvent{
		Room: room, User: user, Active: t.GetActive(),
	}}}, nil)
	s.ok(id)
}

// markRead raises the user's read cursor, up to the room's head at most.
// The user's other devices learn the new unread count (UnreadEvent); in a
// small room the other members see the receipt (ReadEvent on the room's
// signals). A mark that moves nothing (a device behind another) tells
// nobody.
func (s *Session) markRead(ctx context.Context, id uint64, user string, r *pb.MarkRead) {
	room := r.GetRoom()
	if e := s.checkMember(ctx, room, user); e != nil {
		s.fail(id, e)
		return
	}
	if r.GetSeq() == 0 {
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "seq: must be at least 1"))
		return
	}
	head, err := s.ss.RoomLog.Head(ctx, room)
	if err != nil {
		s.logger().Warn("room head unavailable", zap.String("room", room), zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "room unavailable, retry"))
		return
	}
	seq := min(r.GetSeq(), head)
	cursor, err := s.ss.Store.MarkRead(ctx, user, room, seq)
	if err != nil {
		s.logger().Warn("mark read failed", zap.String("room", room), zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "mark read failed, retry"))
		return
	}
	s.ok(id)
	if seq == 0 || cursor != seq {
		return
	}
	s.ss.Users.PublishUserEvent(ctx, user, s, &pb.ServerFrame{Kind: &pb.ServerFrame_Unread{Unread: &pb.UnreadEvent{
		Room: room, HeadSeq: head, ReadSeq: cursor, Unread: head - cursor,
	}}})
	small, err := s.ss.Hubs.SmallRoom(ctx, room)
	if err != nil {
		s.logger().Warn("room size unavailable, no read receipt", zap.String("room", room), zap.Error(err))
		return
	}
	if small {
		s.ss.Signals.Publish(bus.RoomSignals(room), &pb.ServerFrame{Kind: &pb.ServerFrame_Read{Read: &pb.ReadEvent{
			Room: room, User: user, Seq: cursor,
		}}}, nil)
	}
}

// sync answers a page of the user's rooms with their state, so a device
// that was away learns what changed; it then resumes each room it shows
// with Subscribe after_seq.
func (s *Session) sync(ctx context.Context, id uint64, user string, q *pb.Sync) {
	if after := q.GetAfterRoom(); after != "" {
		if e := protocol.ValidRoom(after); e != nil {
			s.fail(id, e)
			return
		}
	}
	list, err := syncRooms(ctx, s.ss.Store, s.ss.RoomLog, user, q.GetAfterRoom(), int(q.GetLimit()))
	if err != nil {
		s.logger().Warn("sync failed", zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "rooms unavailable, retry"))
		return
	}
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_Rooms{Rooms: list}})
}

// Closed releases everything the session holds.
func (s *Session) Closed() {
	s.mu.Lock()
	s.closed = true
	subs, local, timer := s.subs, s.local, s.authTimer
	s.subs, s.authTimer = nil, nil
	s.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if local != nil {
		s.ss.Users.Leave(s, local)
	}
	for _, h := range subs {
		h.Leave(s)
		s.ss.Hubs.Release(h)
	}
	s.ss.mu.Lock()
	delete(s.ss.m, s.seq)
	s.ss.mu.Unlock()
}
