package gateway

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// session is one client connection's protocol state. Handle runs frames one
// at a time; hubs and the results subscription push to it concurrently
// through conn.Send, which never blocks.
type session struct {
	g     *Gateway
	seq   uint64 // the gateway's count of sessions when it opened; see id
	conn  Conn
	codec protocol.Codec

	authTimer *time.Timer // until authenticated; nil after, to free it

	mu     sync.Mutex
	local  *localUser // the user's state on this gateway, once authenticated
	login  string     // the token's login session (auth.Claims.SessionID), set with local
	subs   []*hub     // the rooms subscribed, a few per connection
	closed bool
}

func (g *Gateway) newSession(c Conn, codec protocol.Codec) *session {
	s := &session{
		g:     g,
		seq:   g.nextSession.Add(1),
		conn:  c,
		codec: codec,
	}
	s.authTimer = time.AfterFunc(g.cfg.AuthTimeout, func() {
		if s.userID() == "" {
			s.logger().Info("closing: no authentication in time")
			c.Close(protocol.ClosePolicy, "authenticate first")
		}
	})
	g.sessions.add(s)
	g.metrics.connections.Add(1)
	return s
}

// id names the session across the deployment: <gateway>-<seq in base 36>.
// It is made when needed rather than kept, like the logger.
func (s *session) id() string { return s.g.cfg.ID + "-" + strconv.FormatUint(s.seq, 36) }

func (s *session) userID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.local == nil {
		return ""
	}
	return s.local.id
}

// logger names the session and its user. It is made per call: sessions
// log rarely, and a child logger kept per connection would cost more
// memory than all the rest of an idle connection. Never call it under mu.
func (s *session) logger() *zap.Logger {
	if user := s.userID(); user != "" {
		return s.g.log.With(zap.String("session", s.id()), zap.String("user", user))
	}
	return s.g.log.With(zap.String("session", s.id()))
}

// send encodes and queues a frame.
func (s *session) send(f *pb.ServerFrame) {
	data, err := s.codec.EncodeServer(f)
	if err != nil {
		s.logger().Error("encode failed", zap.Error(err))
		return
	}
	s.conn.Send(data)
}

func (s *session) fail(id uint64, e *pb.Error) {
	s.logger().Info("request failed", zap.Uint64("id", id), zap.Stringer("code", e.Code), zap.String("message", e.Message))
	s.send(protocol.ErrorFrame(id, e))
}

// Handle decodes and runs one client frame.
func (s *session) Handle(data []byte) {
	f := new(pb.ClientFrame)
	if err := s.codec.DecodeClient(data, f); err != nil {
		s.fail(0, protocol.Errorf(pb.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "%v", err))
		return
	}
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
		user = local.id
		allow := local.limits.allowRequest
		if _, ok := f.Kind.(*pb.ClientFrame_Send); ok {
			allow = local.limits.allowSend
		}
		if !allow(&s.g.cfg.Limits) {
			s.fail(f.Id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_RATE_LIMITED, "too many requests, slow down"))
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.g.cfg.RequestTimeout)
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

func (s *session) authenticate(id uint64, a *pb.Authenticate) {
	if s.userID() != "" {
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_ALREADY_AUTHENTICATED, "connection is already authenticated"))
		return
	}
	// Verified under mu: a revocation of the login arriving meanwhile is
	// either seen by verify or finds s.login set (Gateway.CloseLogin).
	s.mu.Lock()
	claims, err := s.g.verify(a.GetToken())
	var timer *time.Timer
	var local *localUser
	if err == nil {
		local = s.g.users.acquire(claims.User)
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
	s.g.users.join(s, local)
}

// sendMessage hands a message to the processor owning its room. The
// answer (SendAck or Error) comes once the message is stored in CHAT_MSG,
// or rejected.
func (s *session) sendMessage(id uint64, user string, m *pb.SendMessage) {
	if e := protocol.ValidateSend(m, s.g.cfg.MaxBodySize); e != nil {
		s.fail(id, e)
		return
	}
	s.g.sends.Send(&pb.InboundMessage{
		Room:        m.Room,
		Sender:      user,
		ClientMsgId: m.ClientMsgId,
		Body:        m.Body,
		Kind:        m.Kind,
		RefSeq:      m.RefSeq,
		Reaction:    m.Reaction,
		ReplyToSeq:  m.ReplyToSeq,
		Mentions:    m.Mentions,
		ReceivedAt:  time.Now().UnixMilli(),
	}, func(r *pb.SendResult) { s.onResult(id, r) })
}

// onResult answers send request id once the processor decided it.
func (s *session) onResult(id uint64, r *pb.SendResult) {
	if r.Error != nil {
		s.fail(id, r.Error)
		return
	}
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_Ack{Ack: &pb.SendAck{
		Room: r.Room, ClientMsgId: r.ClientMsgId, Seq: r.Seq, SentAt: r.SentAt, Duplicate: r.Duplicate,
	}}})
}

// checkMember answers whether user may read room; a nil error means yes.
func (s *session) checkMember(ctx context.Context, room, user string) *pb.Error {
	if e := protocol.ValidRoom(room); e != nil {
		return e
	}
	if _, err := s.g.rooms.Member(ctx, room, user); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return protocol.Errorf(pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND, "room %s does not exist or you are not a member", room)
		}
		s.logger().Warn("membership check failed", zap.String("room", room), zap.Error(err))
		return protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "membership check failed, retry")
	}
	return nil
}

func (s *session) subscribe(ctx context.Context, id uint64, user string, sub *pb.Subscribe) {
	room := sub.GetRoom()
	if e := s.checkMember(ctx, room, user); e != nil {
		s.fail(id, e)
		return
	}
	s.leave(room) // a second Subscribe restarts delivery from its after_seq
	h, err := s.g.hubs.acquire(ctx, room)
	if err != nil {
		s.logger().Warn("room hub failed", zap.String("room", room), zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "room unavailable, retry"))
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.g.hubs.release(h)
		return
	}
	s.subs = append(s.subs, h)
	s.mu.Unlock()
	var after *uint64
	if sub.AfterSeq != nil {
		a := sub.GetAfterSeq()
		after = &a
	}
	if err := h.join(ctx, s, id, after); err != nil {
		// A gap we could not fill: better the client reconnects and
		// resumes than sees a hole.
		s.logger().Warn("catch-up failed", zap.String("room", room), zap.Error(err))
		s.conn.Close(protocol.CloseInternal, "catch-up failed, resume again")
	}
}

// leave ends this session's subscription to room, if any.
func (s *session) leave(room string) bool {
	s.mu.Lock()
	i := s.hubIndex(room)
	var h *hub
	if i >= 0 {
		h = s.subs[i]
		s.subs = slices.Delete(s.subs, i, i+1)
	}
	s.mu.Unlock()
	if h != nil {
		h.leave(s)
		s.g.hubs.release(h)
	}
	return h != nil
}

// hubIndex is the position of room's hub in subs, or -1. Under mu.
func (s *session) hubIndex(room string) int {
	return slices.IndexFunc(s.subs, func(h *hub) bool { return h.room == room })
}

// dropHub ends the session's subscription through h, if it still holds it
// (the member left or was removed from the room).
func (s *session) dropHub(h *hub) {
	s.mu.Lock()
	i := slices.Index(s.subs, h)
	held := i >= 0
	if held {
		s.subs = slices.Delete(s.subs, i, i+1)
	}
	s.mu.Unlock()
	if held {
		s.g.hubs.release(h)
	}
}

func (s *session) unsubscribe(id uint64, room string) {
	s.leave(room)
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_Unsubscribed{Unsubscribed: &pb.Unsubscribed{Room: room}}})
}

func (s *session) history(ctx context.Context, id uint64, user string, q *pb.HistoryRequest) {
	room := q.GetRoom()
	if e := s.checkMember(ctx, room, user); e != nil {
		s.fail(id, e)
		return
	}
	page, err := s.g.historyPage(ctx, room, q.BeforeSeq, q.AfterSeq, protocol.HistoryLimit(q.GetLimit()))
	if err != nil {
		s.logger().Warn("history failed", zap.String("room", room), zap.Error(err))
		s.fail(id, protocol.Errorf(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "history unavailable, retry"))
		return
	}
	s.send(&pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_History{History: page}})
}

// Closed releases everything the session holds.
func (s *session) Closed() {
	s.mu.Lock()
	s.closed = true
	subs, local, timer := s.subs, s.local, s.authTimer
	s.subs, s.authTimer = nil, nil
	s.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if local != nil {
		s.g.users.leave(s, local)
	}
	for _, h := range subs {
		h.leave(s)
		s.g.hubs.release(h)
	}
	s.g.sessions.remove(s.seq)
	s.g.metrics.connections.Add(-1)
}

// pushEvent queues a live room message event without blocking.
func (s *session) pushEvent(ev *event) {
	if frame := ev.frame(s.codec); frame != nil {
		s.conn.Send(frame)
	}
}

// catchUp queues an event of a catch-up, waiting for queue space; false
// means the connection is closing.
func (s *session) catchUp(ev *event) bool {
	frame := ev.frame(s.codec)
	return frame == nil || s.conn.SendWait(frame)
}

// sessionTable holds the open sessions by id: a map under a lock, which
// costs a fraction of a sync.Map's memory per entry.
type sessionTable struct {
	mu sync.RWMutex
	m  map[uint64]*session
}

func (t *sessionTable) add(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[uint64]*session)
	}
	t.m[s.seq] = s
}

func (t *sessionTable) remove(seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, seq)
}

// all returns the sessions open now.
func (t *sessionTable) all() []*session {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return slices.Collect(maps.Values(t.m))
}
