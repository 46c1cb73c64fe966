package outbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/sequencer"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Client messages and room changes leave stamped alike: with the receive
// time, and a client_msg_id (a fresh one for each room change).
func TestOutboxStampsEverySend(t *testing.T) {
	nc := bustest.Connect(t)
	got := make(chan *pb.InboundMessage, 4)
	// A processor that stores everything as seq 1.
	if _, err := nc.Subscribe("parley.send.>", func(m *nats.Msg) {
		in := new(pb.InboundMessage)
		_ = proto.Unmarshal(m.Data, in)
		got <- in
		res, _ := proto.Marshal(&pb.SendResult{Room: in.Room, ClientMsgId: in.ClientMsgId, Seq: 1})
		_ = m.Respond(res)
	}); err != nil {
		t.Fatal(err)
	}
	o := New(nc, sequencer.Config{})
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	before := time.Now().UnixMilli()

	acked := make(chan *pb.SendResult, 1)
	o.Send(FromClient("alice", &pb.SendMessage{Room: "r1", ClientMsgId: "c1", Body: &pb.Body{Text: "hi"}}), func(r *pb.SendResult) { acked <- r })
	if r := <-acked; r.Seq != 1 || r.ClientMsgId != "c1" {
		t.Fatalf("send answered %v", r)
	}
	in := <-got
	if in.Sender != "alice" || in.ClientMsgId != "c1" || in.Body.GetText() != "hi" || in.ReceivedAt < before {
		t.Fatalf("client message sent as %v", in)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ids := make(map[string]bool)
	for range 2 {
		if _, err := o.Do(ctx, &pb.InboundMessage{Room: "r1", Sender: "alice", Kind: pb.MessageKind_MESSAGE_KIND_ROOM_RENAMED}); err != nil {
			t.Fatal(err)
		}
		in := <-got
		if !strings.HasPrefix(in.ClientMsgId, "api-") || in.ReceivedAt < before {
			t.Fatalf("room change sent as %v", in)
		}
		ids[in.ClientMsgId] = true
	}
	if len(ids) != 2 {
		t.Fatal("two room changes share a client_msg_id")
	}
}
