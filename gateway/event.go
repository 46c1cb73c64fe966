package gateway

import (
	"sync"

	"github.com/parley-chat/parley/pkg/protocol"
)

// event is one room message as it fans out: the stored protobuf bytes plus
// each subprotocol's frame, encoded at most once per gateway however many
// connections receive it.
type event struct {
	seq uint64
	raw []byte // pb.Message encoding, as stored in CHAT_MSG

	protoOnce, jsonOnce   sync.Once
	protoFrame, jsonFrame []byte
}

func (e *event) frame(c protocol.Codec) []byte {
	once, out := &e.jsonOnce, &e.jsonFrame
	if c.Binary() {
		once, out = &e.protoOnce, &e.protoFrame
	}
	once.Do(func() {
		// raw was decoded when the event was made, so this cannot fail
		// short of a bug; a nil frame is then skipped by the sender.
		*out, _ = c.EncodeMessageEvent(e.raw)
	})
	return *out
}

// eventsAfter returns the events of evs with seq > after.
func eventsAfter(evs []*event, after uint64) []*event {
	for i, ev := range evs {
		if ev.seq > after {
			return evs[i:]
		}
	}
	return nil
}
