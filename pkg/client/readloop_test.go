package client

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// serverFrame encodes a frame as a server sends it: unmasked.
func serverFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	b, err := ws.CompileFrame(ws.NewFrame(op, fin, payload))
	if err != nil {
		panic(err)
	}
	return b
}

// pendingIDs are the requests a fuzzed client waits for.
var pendingIDs = []uint64{1, 2, 3}

// readStream runs a client's read loop over stream as the server's bytes,
// with requests pendingIDs waiting, and returns what the client wrote back.
// The loop must end when the input does.
func readStream(t *testing.T, codec protocol.Codec, stream []byte) (*Client, map[uint64]chan *pb.ServerFrame, []byte) {
	t.Helper()
	local, remote := net.Pipe()
	written := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(remote)
		written <- b
	}()
	c := &Client{
		conn:    local,
		codec:   codec,
		events:  make(chan *pb.ServerFrame, len(stream)/2+1), // a frame takes at least 2 bytes
		signals: make(chan *pb.ServerFrame, signalBuffer),
		pending: make(map[uint64]chan *pb.ServerFrame),
		done:    make(chan struct{}),
	}
	waiting := make(map[uint64]chan *pb.ServerFrame)
	for _, id := range pendingIDs {
		waiting[id] = make(chan *pb.ServerFrame, 1)
		c.pending[id] = waiting[id]
	}
	c.readLoop(bytes.NewReader(stream))
	return c, waiting, <-written
}

// checkServerFrame checks that a frame the client decoded survives a round
// trip through its codec unchanged.
func checkServerFrame(t *testing.T, codec protocol.Codec, f *pb.ServerFrame) {
	t.Helper()
	b, err := codec.EncodeServer(f)
	if err != nil {
		t.Fatalf("re-encode %v: %v", f, err)
	}
	var g pb.ServerFrame
	if err := codec.DecodeServer(b, &g); err != nil || !proto.Equal(f, &g) {
		t.Fatalf("round trip of %v: %v %v", f, &g, err)
	}
}

var sampleMsg = &pb.Message{Room: "r1", Seq: 7, Sender: "bob", ClientMsgId: "c1", SentAt: 1700000000000, Body: &pb.Body{Text: "héllo"}}

// sampleStream is what a gateway sends a client in codec's subprotocol:
// answers to requests 1 to 3, a presence signal, a message event in two
// fragments with a ping between them, and a close frame.
func sampleStream(t testing.TB, codec protocol.Codec) []byte {
	op := ws.OpText
	if codec.Binary() {
		op = ws.OpBinary
	}
	var stream [][]byte
	for _, fr := range []*pb.ServerFrame{
		{Id: 1, Kind: &pb.ServerFrame_Authenticated{Authenticated: &pb.Authenticated{UserId: "alice", SessionId: "s1", ServerTime: 1700000000000}}},
		{Id: 2, Kind: &pb.ServerFrame_Ack{Ack: &pb.SendAck{Room: "r1", ClientMsgId: "c1", Seq: 7, SentAt: 1700000000000}}},
		{Id: 3, Kind: &pb.ServerFrame_Error{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_RATE_LIMITED, Message: "slow down", RetryAfterMs: 500}}},
		{Kind: &pb.ServerFrame_Presence{Presence: &pb.PresenceEvent{User: "bob", Online: true}}},
	} {
		b, err := codec.EncodeServer(fr)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, serverFrame(op, true, b))
	}
	raw, _ := proto.Marshal(sampleMsg)
	event, err := codec.EncodeMessageEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	stream = append(stream,
		serverFrame(op, false, event[:3]),
		serverFrame(ws.OpPing, true, []byte("hb")),
		serverFrame(ws.OpContinuation, true, event[3:]),
		serverFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusGoingAway, "gateway shutting down, reconnect")),
	)
	return bytes.Join(stream, nil)
}

// The sample stream's frames go where they belong, the ping is answered
// and the close frame echoed.
func TestReadLoopRoutesFrames(t *testing.T) {
	for _, codec := range []protocol.Codec{protocol.Proto, protocol.JSON} {
		c, waiting, written := readStream(t, codec, sampleStream(t, codec))
		if c.CloseCode() != ws.StatusGoingAway {
			t.Fatalf("%s: close code %d (%v)", codec.Subprotocol(), c.CloseCode(), c.Err())
		}
		if a := (<-waiting[1]).GetAuthenticated(); a.GetUserId() != "alice" {
			t.Fatalf("%s: request 1 answered %v", codec.Subprotocol(), a)
		}
		if a := (<-waiting[2]).GetAck(); a.GetSeq() != 7 {
			t.Fatalf("%s: request 2 answered %v", codec.Subprotocol(), a)
		}
		if e := (<-waiting[3]).GetError(); e.GetRetryAfterMs() != 500 {
			t.Fatalf("%s: request 3 answered %v", codec.Subprotocol(), e)
		}
		if s := <-c.Signals(); s.GetPresence().GetUser() != "bob" {
			t.Fatalf("%s: signal %v", codec.Subprotocol(), s)
		}
		if e := <-c.Events(); !proto.Equal(e.GetMessage(), sampleMsg) {
			t.Fatalf("%s: event %v", codec.Subprotocol(), e)
		}
		r := bytes.NewReader(written)
		for _, want := range []ws.OpCode{ws.OpPong, ws.OpClose} {
			fr, err := ws.ReadFrame(r)
			if err != nil || fr.Header.OpCode != want || !fr.Header.Masked {
				t.Fatalf("%s: wrote %+v %v, want a masked %v", codec.Subprotocol(), fr.Header, err, want)
			}
		}
	}
}

// FuzzReadLoop gives the Go client arbitrary bytes as the server's. It
// must never panic or hang, and once the input ends: the connection is
// done with a reason, every decoded frame went where its id and kind say
// (pushed events and signals with id 0, answers to the request waiting
// for their id) and survives a round trip through the codec, and what the
// client wrote back is only masked pongs and close frames that a server
// accepts. binary picks the proto codec, else JSON.
func FuzzReadLoop(f *testing.F) {
	for _, codec := range []protocol.Codec{protocol.Proto, protocol.JSON} {
		f.Add(sampleStream(f, codec), codec.Binary())
	}
	f.Add(serverFrame(ws.OpText, true, []byte(`{"id":"1","authenticated":{"user_id":"alice"}}`)), false)
	f.Add(serverFrame(ws.OpBinary, true, []byte{0x0a, 0xff}), true) // truncated proto
	f.Add(clientFrame(ws.OpPing, []byte("masked")), false)
	f.Fuzz(func(t *testing.T, stream []byte, binary bool) {
		codec := protocol.JSON
		if binary {
			codec = protocol.Proto
		}
		c, waiting, written := readStream(t, codec, stream)
		select {
		case <-c.Done():
		default:
			t.Fatal("input ended, connection not done")
		}
		if c.Err() == nil {
			t.Fatal("connection done without a reason")
		}
		for fr := range c.Events() {
			if fr.Id != 0 || isSignal(fr) {
				t.Fatalf("pushed as an event: %v", fr)
			}
			checkServerFrame(t, codec, fr)
		}
		for fr := range c.Signals() {
			if fr.Id != 0 || !isSignal(fr) {
				t.Fatalf("pushed as a signal: %v", fr)
			}
			checkServerFrame(t, codec, fr)
		}
		for id, ch := range waiting {
			select {
			case fr := <-ch:
				if fr.Id != id {
					t.Fatalf("request %d answered with %v", id, fr)
				}
				checkServerFrame(t, codec, fr)
			default:
			}
		}
		checkWritten(t, written)
	})
}

// clientFrame encodes a frame as a client sends it: masked.
func clientFrame(op ws.OpCode, payload []byte) []byte {
	b, err := ws.CompileFrame(ws.MaskFrame(ws.NewFrame(op, true, payload)))
	if err != nil {
		panic(err)
	}
	return b
}

// checkWritten checks that the client wrote whole, masked pong and close
// frames.
func checkWritten(t *testing.T, written []byte) {
	t.Helper()
	r := bytes.NewReader(written)
	for r.Len() > 0 {
		fr, err := ws.ReadFrame(r)
		if err == nil {
			err = ws.CheckHeader(fr.Header, ws.StateServerSide)
		}
		if err != nil {
			t.Fatalf("client wrote %x: %v", written, err)
		}
		if op := fr.Header.OpCode; op != ws.OpPong && op != ws.OpClose {
			t.Fatalf("client answered with a %v frame", op)
		}
	}
}

// A close frame with an invalid code is answered with a masked 1002 (the
// regression seed testdata/fuzz/FuzzReadLoop/ab408f58f95ef4f8 has one with
// an invalid reason too).
func TestInvalidCloseAnsweredMasked(t *testing.T) {
	stream := serverFrame(ws.OpClose, true, ws.NewCloseFrameBody(999, "no such code"))
	c, _, written := readStream(t, protocol.JSON, stream)
	var pe ws.ProtocolError
	if !errors.As(c.Err(), &pe) {
		t.Fatalf("connection ended with %v, want a protocol error", c.Err())
	}
	fr, err := ws.ReadFrame(bytes.NewReader(written))
	if err != nil || fr.Header.OpCode != ws.OpClose || !fr.Header.Masked {
		t.Fatalf("answered %+v %v, want a masked close frame", fr.Header, err)
	}
	if code, _ := ws.ParseCloseFrameData(ws.UnmaskFrame(fr).Payload); code != ws.StatusProtocolError {
		t.Fatalf("answered close code %d", code)
	}
}
