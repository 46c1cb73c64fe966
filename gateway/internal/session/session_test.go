package session

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/gateway/internal/fanout"
	"github.com/parley-chat/parley/gateway/internal/follow"
	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/gateway/internal/ratelimit"
	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/roomlog"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// rooms is a store and room log in memory: room r1 with alice in it and
// three messages.
type rooms struct {
	mu    sync.Mutex
	reads map[string]uint64
}

var r1 = [][]byte{msg(1), msg(2), msg(3)}

func msg(seq uint64) []byte {
	raw, _ := proto.Marshal(&pb.Message{Room: "r1", Seq: seq, Sender: "alice", Body: &pb.Body{Text: "hi"}})
	return raw
}

func (*rooms) Member(_ context.Context, room, user string) (store.Member, error) {
	if room == "r1" && user == "alice" {
		return store.Member{User: user, Role: store.RoleOwner}, nil
	}
	return store.Member{}, store.ErrNotFound
}

func (*rooms) Members(_ context.Context, room, _ string, _ int) ([]store.Member, error) {
	return []store.Member{{User: "alice"}}, nil
}

func (*rooms) Room(_ context.Context, id string) (store.Room, error) {
	return store.Room{ID: id, Kind: store.RoomGroup, Name: "general"}, nil
}

func (*rooms) UserRooms(_ context.Context, user, after string, _ int) ([]string, error) {
	if user == "alice" && after < "r1" {
		return []string{"r1"}, nil
	}
	return nil, nil
}

func (r *rooms) ReadSeq(_ context.Context, user, room string) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads[user+"/"+room], nil
}

func (r *rooms) MarkRead(_ context.Context, user, room string, seq uint64) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := user + "/" + room
	r.reads[k] = max(r.reads[k], seq)
	return r.reads[k], nil
}

func (*rooms) Head(context.Context, string) (uint64, error) { return uint64(len(r1)), nil }

func (*rooms) Range(_ context.Context, _ string, from, to uint64) ([]roomlog.Entry, error) {
	var out []roomlog.Entry
	for seq := from; seq <= min(to, uint64(len(r1))); seq++ {
		out = append(out, roomlog.Entry{Seq: seq, Raw: r1[seq-1]})
	}
	return out, nil
}

func (*rooms) Message(_ context.Context, _ string, seq uint64) (*pb.Message, error) {
	m := new(pb.Message)
	return m, proto.Unmarshal(r1[seq-1], m)
}

// processor answers every send with seq 7 and keeps what it got.
type processor struct {
	mu  sync.Mutex
	got []*pb.InboundMessage
}

func (p *processor) Send(in *pb.InboundMessage, done func(*pb.SendResult)) {
	p.mu.Lock()
	p.got = append(p.got, in)
	p.mu.Unlock()
	go done(&pb.SendResult{Room: in.Room, ClientMsgId: in.ClientMsgId, Seq: 7})
}

// users are local users that follow nobody.
type users struct{ *follow.Users }

func (users) Join(push.Receiver, *follow.User)                                         {}
func (u users) Leave(_ push.Receiver, lu *follow.User)                                 { u.Release(lu) }
func (users) PublishUserEvent(context.Context, string, push.Receiver, *pb.ServerFrame) {}

// conn is a client connection that keeps the frames sent to it.
type conn struct {
	frames chan *pb.ServerFrame
	closed chan int // the close code
	once   sync.Once
}

func newConn() *conn {
	return &conn{frames: make(chan *pb.ServerFrame, 64), closed: make(chan int, 1)}
}

func (c *conn) Send(frame []byte) {
	f := new(pb.ServerFrame)
	if err := proto.Unmarshal(frame, f); err != nil {
		panic(err)
	}
	c.frames <- f
}

func (c *conn) SendWait(frame []byte) bool { c.Send(frame); return true }
func (c *conn) Close(code int, _ string)   { c.once.Do(func() { c.closed <- code }) }
func (c *conn) RemoteAddr() string         { return "test" }

// next is the next frame sent to c.
func (c *conn) next(t *testing.T) *pb.ServerFrame {
	t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no frame")
		return nil
	}
}

var protoCodec = protocol.ForSubprotocol(protocol.SubprotocolProto)

type harness struct {
	ss     *Sessions
	proc   *processor
	signer *auth.Signer
}

func newHarness(t *testing.T, cfg Config) *harness {
	nc := bustest.Connect(t)
	log := zaptest.NewLogger(t)
	st := &rooms{reads: make(map[string]uint64)}
	hubs := fanout.New(nc, st, st, log, fanout.Config{})
	hubs.Start()
	t.Cleanup(hubs.Stop)
	signer, err := auth.NewSigner(bytes.Repeat([]byte("k"), 32), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{proc: new(processor), signer: signer}
	h.ss = New(Deps{
		Hubs: hubs, Users: users{follow.New(nc, nil, nil, zap.NewNop(), follow.Config{})}, Sends: h.proc,
		Verifier: signer, Store: st, RoomLog: st, Signals: push.Publisher{NC: nc, Log: log},
	}, log, cfg)
	return h
}

func (h *harness) open() (*Session, *conn) {
	c := newConn()
	return h.ss.Open(c, protoCodec), c
}

// request sends f to s and returns the answer.
func request(t *testing.T, s *Session, c *conn, f *pb.ClientFrame) *pb.ServerFrame {
	t.Helper()
	data, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle(data)
	return c.next(t)
}

func (h *harness) login(t *testing.T, s *Session, c *conn, user, login string) {
	t.Helper()
	token, _, err := h.signer.Issue(user, login)
	if err != nil {
		t.Fatal(err)
	}
	a := request(t, s, c, &pb.ClientFrame{Id: 1, Kind: &pb.ClientFrame_Auth{Auth: &pb.Authenticate{Token: token}}})
	if a.GetAuthenticated().GetUserId() != user {
		t.Fatalf("authenticate: %v", a)
	}
}

func wantError(t *testing.T, f *pb.ServerFrame, id uint64, code pb.ErrorCode) {
	t.Helper()
	if f.Id != id || f.GetError().GetCode() != code {
		t.Fatalf("answer %v, want error %v for request %d", f, code, id)
	}
}

// Each request gets one answer carrying its id: a result, or an error
// frame with the documented code.
func TestSessionAnswersRequests(t *testing.T) {
	h := newHarness(t, Config{GatewayID: "gw1", Limits: ratelimit.Config{SendRate: -1, RequestRate: -1}})
	s, c := h.open()

	s.Handle([]byte{0xff, 0x01})
	wantError(t, c.next(t), 0, pb.ErrorCode_ERROR_CODE_MALFORMED_FRAME)
	ping := &pb.ClientFrame{Id: 2, Kind: &pb.ClientFrame_Ping{Ping: &pb.Ping{ClientTime: 5}}}
	wantError(t, request(t, s, c, ping), 2, pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED)
	bad := &pb.ClientFrame{Id: 3, Kind: &pb.ClientFrame_Auth{Auth: &pb.Authenticate{Token: "nope"}}}
	wantError(t, request(t, s, c, bad), 3, pb.ErrorCode_ERROR_CODE_AUTH_FAILED)

	h.login(t, s, c, "alice", "login1")
	wantError(t, request(t, s, c, &pb.ClientFrame{Id: 4, Kind: bad.Kind}), 4, pb.ErrorCode_ERROR_CODE_ALREADY_AUTHENTICATED)
	if f := request(t, s, c, ping); f.Id != 2 || f.GetPong().GetClientTime() != 5 {
		t.Fatalf("ping: %v", f)
	}
	wantError(t, request(t, s, c, &pb.ClientFrame{Id: 5}), 5, pb.ErrorCode_ERROR_CODE_UNKNOWN_FRAME)

	// A send goes to the processor once, stamped, and its answer is the ack.
	send := &pb.ClientFrame{Id: 6, Kind: &pb.ClientFrame_Send{Send: &pb.SendMessage{Room: "r1", ClientMsgId: "c1", Body: &pb.Body{Text: "hello"}}}}
	if f := request(t, s, c, send); f.Id != 6 || f.GetAck().GetSeq() != 7 || f.GetAck().GetClientMsgId() != "c1" {
		t.Fatalf("send: %v", f)
	}
	h.proc.mu.Lock()
	if len(h.proc.got) != 1 || h.proc.got[0].Sender != "alice" || h.proc.got[0].Body.GetText() != "hello" {
		t.Fatalf("the processor got %v", h.proc.got)
	}
	h.proc.mu.Unlock()
	noID := &pb.ClientFrame{Id: 7, Kind: &pb.ClientFrame_Send{Send: &pb.SendMessage{Room: "r1", Body: &pb.Body{Text: "x"}}}}
	wantError(t, request(t, s, c, noID), 7, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)

	// Rooms: only members read them, and rooms one is not in look absent.
	sub := func(id uint64, room string, after *uint64) *pb.ClientFrame {
		return &pb.ClientFrame{Id: id, Kind: &pb.ClientFrame_Subscribe{Subscribe: &pb.Subscribe{Room: room, AfterSeq: after}}}
	}
	wantError(t, request(t, s, c, sub(8, "r2", nil)), 8, pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND)
	one := uint64(1)
	if f := request(t, s, c, sub(9, "r1", &one)); f.Id != 9 || f.GetSubscribed().GetHeadSeq() != 3 {
		t.Fatalf("subscribe: %v", f)
	}
	for _, want := range []uint64{2, 3} { // the catch-up after seq 1
		if f := c.next(t); f.GetMessage().GetSeq() != want {
			t.Fatalf("catch-up: %v, want seq %d", f, want)
		}
	}
	hist := &pb.ClientFrame{Id: 10, Kind: &pb.ClientFrame_History{History: &pb.HistoryRequest{Room: "r1", Limit: 2}}}
	if f := request(t, s, c, hist); f.Id != 10 || len(f.GetHistory().GetMessages()) != 2 || !f.GetHistory().GetHasMore() {
		t.Fatalf("history: %v", f)
	}
	mark := &pb.ClientFrame{Id: 11, Kind: &pb.ClientFrame_MarkRead{MarkRead: &pb.MarkRead{Room: "r1", Seq: 9}}}
	if f := request(t, s, c, mark); f.Id != 11 || f.GetOk() == nil {
		t.Fatalf("mark read: %v", f)
	}
	sync := &pb.ClientFrame{Id: 12, Kind: &pb.ClientFrame_Sync{Sync: &pb.Sync{}}}
	f := request(t, s, c, sync)
	if rs := f.GetRooms().GetRooms(); f.Id != 12 || len(rs) != 1 || rs[0].GetReadSeq() != 3 || rs[0].GetUnread() != 0 || rs[0].GetLastMessage().GetSeq() != 3 {
		t.Fatalf("sync: %v", f)
	}
	unsub := &pb.ClientFrame{Id: 13, Kind: &pb.ClientFrame_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Room: "r1"}}}
	if f := request(t, s, c, unsub); f.Id != 13 || f.GetUnsubscribed().GetRoom() != "r1" {
		t.Fatalf("unsubscribe: %v", f)
	}
	s.Closed()
	if n := h.ss.Count(); n != 0 {
		t.Fatalf("%d sessions open after Closed", n)
	}
}

// A user's requests past the burst are refused, sends and other requests
// counted apart.
func TestSessionRateLimits(t *testing.T) {
	h := newHarness(t, Config{Limits: ratelimit.Config{SendRate: 0.001, SendBurst: 1, RequestRate: 0.001, RequestBurst: 2}})
	s, c := h.open()
	h.login(t, s, c, "alice", "l")
	ping := &pb.ClientFrame{Id: 2, Kind: &pb.ClientFrame_Ping{Ping: &pb.Ping{}}}
	for range 2 {
		if f := request(t, s, c, ping); f.GetPong() == nil {
			t.Fatalf("ping within the burst: %v", f)
		}
	}
	wantError(t, request(t, s, c, ping), 2, pb.ErrorCode_ERROR_CODE_RATE_LIMITED)
	send := &pb.ClientFrame{Id: 3, Kind: &pb.ClientFrame_Send{Send: &pb.SendMessage{Room: "r1", ClientMsgId: "c1", Body: &pb.Body{Text: "x"}}}}
	if f := request(t, s, c, send); f.GetAck() == nil {
		t.Fatalf("send within its own burst: %v", f)
	}
	wantError(t, request(t, s, c, send), 3, pb.ErrorCode_ERROR_CODE_RATE_LIMITED)
}

// A connection that does not authenticate in time is closed; a revoked
// login's connections are closed, others stay.
func TestSessionClosesUnauthenticatedAndRevoked(t *testing.T) {
	h := newHarness(t, Config{AuthTimeout: 50 * time.Millisecond})
	_, idle := h.open()
	select {
	case code := <-idle.closed:
		if code != protocol.ClosePolicy {
			t.Fatalf("close code %d, want %d", code, protocol.ClosePolicy)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an unauthenticated connection stayed open")
	}

	revoked, rc := h.open()
	h.login(t, revoked, rc, "alice", "old")
	kept, kc := h.open()
	h.login(t, kept, kc, "alice", "new")
	h.ss.CloseLogin("old")
	select {
	case <-rc.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked login's connection stayed open")
	}
	select {
	case <-kc.closed:
		t.Fatal("another login's connection was closed")
	case <-time.After(100 * time.Millisecond):
	}
}
