// Package push holds the frames a gateway pushes to its connections: room
// message events, and signals (presence, typing, receipts, unread and
// online counts, request answers).
//
// Invariant: a pushed frame is encoded at most once per subprotocol on a
// gateway, however many connections receive it. Receivers never block on a
// push: a connection whose queue is full is closed as a slow consumer.
package push

import (
	"sync"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// Frame is something pushed to connections, encoded for each one's codec.
type Frame interface {
	// Encoded is the frame in c's encoding, made on first use; nil if it
	// cannot be encoded (receivers skip it).
	Encoded(c protocol.Codec) []byte
}

// Receiver is a connection's session as pushers see it.
type Receiver interface {
	// Push queues f without blocking.
	Push(f Frame)
}

// encodings holds a pushed frame's encoding for each subprotocol.
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

// Event is one room message as it fans out: the stored protobuf bytes plus
// each subprotocol's frame.
type Event struct {
	Seq uint64
	Raw []byte // pb.Message encoding, as stored in CHAT_MSG
	enc encodings
}

// Encoded is the event's MessageEvent frame.
func (e *Event) Encoded(c protocol.Codec) []byte {
	// Raw was decoded when the event was made, so this cannot fail short
	// of a bug.
	return e.enc.get(c, func() ([]byte, error) { return c.EncodeMessageEvent(e.Raw) })
}

// Signal is a pushed frame other than a room message.
type Signal struct {
	f   *pb.ServerFrame
	enc encodings
}

// NewSignal wraps f, which must not change afterwards.
func NewSignal(f *pb.ServerFrame) *Signal { return &Signal{f: f} }

// Encoded is the signal's frame.
func (s *Signal) Encoded(c protocol.Codec) []byte {
	return s.enc.get(c, func() ([]byte, error) { return c.EncodeServer(s.f) })
}

// Publisher sends signals to other gateways over core NATS: at most once,
// gone if nobody listens.
type Publisher struct {
	NC  *nats.Conn
	Log *zap.Logger
}

// Publish sends f on subject; header names its origin. A failure is
// logged: signals are ephemeral.
func (p Publisher) Publish(subject string, f *pb.ServerFrame, header nats.Header) {
	data, err := proto.Marshal(f)
	if err == nil {
		err = p.NC.PublishMsg(&nats.Msg{Subject: subject, Data: data, Header: header})
	}
	if err != nil {
		p.Log.Warn("signal not published", zap.String("subject", subject), zap.Error(err))
	}
}
