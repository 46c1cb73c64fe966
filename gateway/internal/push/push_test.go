package push

import (
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// A frame is encoded once per subprotocol, however many receive it, and
// each encoding decodes to the frame.
func TestFramesEncodeOncePerSubprotocol(t *testing.T) {
	raw, _ := proto.Marshal(&pb.Message{Room: "r1", Seq: 4})
	ev := &Event{Seq: 4, Raw: raw}
	sg := NewSignal(&pb.ServerFrame{Kind: &pb.ServerFrame_Pong{Pong: &pb.Pong{ClientTime: 9}}})
	for _, name := range protocol.Subprotocols {
		c := protocol.ForSubprotocol(name)
		for _, f := range []Frame{ev, sg} {
			a, b := f.Encoded(c), f.Encoded(c)
			if len(a) == 0 || &a[0] != &b[0] {
				t.Fatalf("%s: %T encoded twice or not at all", name, f)
			}
		}
	}
	bin := protocol.ForSubprotocol(protocol.SubprotocolProto)
	var got pb.ServerFrame
	if err := proto.Unmarshal(ev.Encoded(bin), &got); err != nil || got.GetMessage().GetSeq() != 4 {
		t.Fatalf("event frame: %v %v", &got, err)
	}
	if err := proto.Unmarshal(sg.Encoded(bin), &got); err != nil || got.GetPong().GetClientTime() != 9 {
		t.Fatalf("signal frame: %v %v", &got, err)
	}
}
