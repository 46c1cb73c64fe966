package protocol

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

func sampleMessage() *pb.Message {
	return &pb.Message{Room: "r1", Seq: 42, Sender: "alice", ClientMsgId: "c-1", SentAt: 1700000000000,
		Body: &pb.Body{Text: "héllo <b>", Attachments: []*pb.Attachment{{Kind: pb.Attachment_KIND_IMAGE, Url: "https://x/y.png", Width: 3}}}}
}

// The event built around stored bytes decodes to the same frame as one
// encoded from scratch, in both subprotocols.
func TestEncodeMessageEvent(t *testing.T) {
	m := sampleMessage()
	raw, _ := proto.Marshal(m)
	for _, c := range []Codec{Proto, JSON} {
		data, err := c.EncodeMessageEvent(raw)
		if err != nil {
			t.Fatal(err)
		}
		var f pb.ServerFrame
		if err := c.DecodeServer(data, &f); err != nil {
			t.Fatalf("%s: %v", c.Subprotocol(), err)
		}
		if f.Id != 0 || !proto.Equal(f.GetMessage(), m) {
			t.Fatalf("%s: decoded %v, want %v", c.Subprotocol(), &f, m)
		}
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	var f pb.ClientFrame
	if err := JSON.DecodeClient([]byte(`{"id":1,"send":`), &f); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated JSON: %v", err)
	}
	if err := Proto.DecodeClient([]byte{0x0a, 0xff}, &f); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated proto: %v", err)
	}
	// Unknown requests decode to a frame without a kind (UNKNOWN_FRAME).
	if err := JSON.DecodeClient([]byte(`{"id":"7","teleport":{}}`), &f); err != nil || f.Kind != nil || f.Id != 7 {
		t.Fatalf("unknown JSON request: %v %v", err, &f)
	}
}

func TestValidateSend(t *testing.T) {
	ok := &pb.SendMessage{Room: "r1", ClientMsgId: "a", Body: &pb.Body{Text: "hi"}}
	cases := map[string]struct {
		mut  func(*pb.SendMessage)
		code pb.ErrorCode
	}{
		"ok":             {func(*pb.SendMessage) {}, 0},
		"bad room":       {func(s *pb.SendMessage) { s.Room = "a.b" }, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT},
		"no id":          {func(s *pb.SendMessage) { s.ClientMsgId = "" }, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT},
		"space in id":    {func(s *pb.SendMessage) { s.ClientMsgId = "a b" }, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT},
		"empty body":     {func(s *pb.SendMessage) { s.Body = nil }, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT},
		"too large":      {func(s *pb.SendMessage) { s.Body.Text = string(make([]byte, 100)) }, pb.ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE},
		"attachment url": {func(s *pb.SendMessage) { s.Body.Attachments = []*pb.Attachment{{Kind: pb.Attachment_KIND_FILE}} }, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT},
	}
	for name, tc := range cases {
		s := proto.Clone(ok).(*pb.SendMessage)
		tc.mut(s)
		e := ValidateSend(s, 64)
		if e.GetCode() != tc.code {
			t.Errorf("%s: got %v, want %v", name, e, tc.code)
		}
	}
}

// fuzzDecode checks a codec never panics and that whatever it accepts
// survives a round trip unchanged.
func fuzzDecode(t *testing.T, c Codec, data []byte) {
	var f pb.ClientFrame
	if err := c.DecodeClient(data, &f); err != nil {
		return
	}
	again, err := c.EncodeClient(&f)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	var g pb.ClientFrame
	if err := c.DecodeClient(again, &g); err != nil {
		t.Fatalf("decode of re-encoded frame: %v", err)
	}
	if !proto.Equal(&f, &g) {
		t.Fatalf("round trip changed the frame: %v != %v", &f, &g)
	}
	if s := f.GetSend(); s != nil {
		_ = ValidateSend(s, DefaultMaxBodySize)
	}
}

func seeds(f *testing.F, c Codec) {
	for _, fr := range []*pb.ClientFrame{
		{Id: 1, Kind: &pb.ClientFrame_Auth{Auth: &pb.Authenticate{Token: "t"}}},
		{Id: 2, Kind: &pb.ClientFrame_Send{Send: &pb.SendMessage{Room: "r", ClientMsgId: "c", Body: sampleMessage().Body}}},
		{Id: 3, Kind: &pb.ClientFrame_Subscribe{Subscribe: &pb.Subscribe{Room: "r", AfterSeq: proto.Uint64(9)}}},
		{Id: 4, Kind: &pb.ClientFrame_History{History: &pb.HistoryRequest{Room: "r", BeforeSeq: proto.Uint64(5), Limit: 10}}},
	} {
		b, _ := c.EncodeClient(fr)
		f.Add(b)
	}
}

func FuzzDecodeClientProto(f *testing.F) {
	seeds(f, Proto)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, Proto, data) })
}

func FuzzDecodeClientJSON(f *testing.F) {
	seeds(f, JSON)
	f.Add([]byte(`{"id":"1","send":{"room":"r","client_msg_id":"x","body":{"text":"\u00e9"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, JSON, data) })
}
