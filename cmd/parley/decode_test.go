package main

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

func TestDecodeBySubject(t *testing.T) {
	msg, _ := proto.Marshal(&pb.Message{Room: "r1", Seq: 7, Sender: "alice", ClientMsgId: "c1", Body: &pb.Body{Text: "hi"}})
	send, _ := proto.Marshal(&pb.InboundMessage{Room: "r1", Sender: "alice", ClientMsgId: "c1"})
	note, _ := proto.Marshal(&pb.Notification{User: "bob", Room: "r1", Seq: 7, Reason: "direct"})
	for _, tc := range []struct {
		args []string
		data []byte
		want string
	}{
		{[]string{"--subject", "room.r1.ev"}, msg, `{"room":"r1","seq":"7","sender":"alice","client_msg_id":"c1","body":{"text":"hi"}}`},
		{[]string{"--subject", "chat.msg.r1"}, msg, `"seq":"7"`},
		{nil, msg, `"sender":"alice"`}, // no subject: a room message
		{[]string{"--subject", "parley.send.3.r1"}, send, `{"room":"r1","sender":"alice","client_msg_id":"c1"}`},
		{[]string{"--subject", "notify.bob"}, note, `"reason":"direct"`},
		{[]string{"--type", "notification", "--subject", "room.r1.ev"}, note, `"user":"bob"`},
	} {
		var out bytes.Buffer
		if err := decode(tc.args, bytes.NewReader(tc.data), &out); err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if !strings.Contains(out.String(), tc.want) || !strings.HasSuffix(out.String(), "}\n") {
			t.Errorf("%v: %q, want it to contain %s", tc.args, out.String(), tc.want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	if err := decode([]string{"--type", "nope"}, strings.NewReader(""), new(bytes.Buffer)); err == nil || !strings.Contains(err.Error(), "message") {
		t.Errorf("unknown type: %v, want an error listing the types", err)
	}
	if err := decode(nil, strings.NewReader("{\"not\":\"protobuf\"}"), new(bytes.Buffer)); err == nil {
		t.Error("a JSON payload decoded as a message")
	}
}
