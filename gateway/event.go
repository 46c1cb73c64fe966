package gateway

import (
	"sync"

	"github.com/parley-chat/parley/pkg/protocol"
)

// encodings holds a pushed frame's encoding for each subprotocol, made at
// most once per gateway however many connections receive it.
type encodings struct {
	protoOnce, jsonOnce   sync.Once
	protoFrame, jsonFrame []byte
}

// get returns c's encoding, made by encode on first use. A frame that fails
// to encode is nil, which senders skip.
func (e *encodings) get(c protocol.Codec, encode func() ([]byte, error)) []byte {
	once, out := &e.jsonOnce, &e.jsonFrame
	if c.Binary() {
		once, out = &e.protoOnce, &e.protoFrame
	}
	once.Do(func() { *out, _ = encode() })
	return *out
}

// event is one room message as it fans out: the stored protobuf bytes plus
// each subprotocol's frame.
type event struct {
	seq uint64
	raw []byte // pb.Message encoding, as stored in CHAT_MSG
	encodings
}

func (e *event) frame(c protocol.Codec) []byte {
	// raw was decoded when the event was made, so this cannot fail short
	// of a bug.
	return e.get(c, func() ([]byte, error) { return c.EncodeMessageEvent(e.raw) })
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
