// Package outbox is a gateway's one way into the processors: a client's
// message (a WebSocket Send) and a room change (an API call) are both
// stamped here and handed to the processor owning their room through a
// sequencer.Client.
//
// Invariant: every InboundMessage leaves with its receive time set and a
// client_msg_id: the client's for a message, a fresh random "api-…" one for
// each room change, so the processor's dedup never merges two changes.
package outbox

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parley-chat/parley/internal/sequencer"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Outbox sends to the processors.
type Outbox struct {
	nc  *nats.Conn
	cfg sequencer.Config
	c   *sequencer.Client // made by Start
}

// New makes an outbox; Start connects it.
func New(nc *nats.Conn, cfg sequencer.Config) *Outbox { return &Outbox{nc: nc, cfg: cfg} }

// Start subscribes to the processors' answers.
func (o *Outbox) Start() (err error) {
	o.c, err = sequencer.NewClient(o.nc, o.cfg)
	return err
}

// Close fails every send still waiting with UNAVAILABLE (their clients
// resend them with the same client_msg_id).
func (o *Outbox) Close() {
	if o.c != nil {
		o.c.Close()
	}
}

// Pending is the number of sends awaiting a processor's answer.
func (o *Outbox) Pending() int {
	if o.c == nil {
		return 0
	}
	return o.c.Pending()
}

// Resends counts the sends sent to the processors again.
func (o *Outbox) Resends() uint64 {
	if o.c == nil {
		return 0
	}
	return o.c.Resends()
}

// FromClient is the InboundMessage of a client's Send request by user.
func FromClient(user string, m *pb.SendMessage) *pb.InboundMessage {
	return &pb.InboundMessage{
		Room:        m.Room,
		Sender:      user,
		ClientMsgId: m.ClientMsgId,
		Body:        m.Body,
		Kind:        m.Kind,
		RefSeq:      m.RefSeq,
		Reaction:    m.Reaction,
		ReplyToSeq:  m.ReplyToSeq,
		Mentions:    m.Mentions,
	}
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Send stamps in and hands it to the processor owning its room. done is
// called exactly once, from another goroutine, with the processor's answer
// or an error result.
func (o *Outbox) Send(in *pb.InboundMessage, done func(*pb.SendResult)) {
	stamp(in)
	o.c.Send(in, done)
}

// Do sends in and waits for its answer or the end of ctx.
func (o *Outbox) Do(ctx context.Context, in *pb.InboundMessage) (*pb.SendResult, error) {
	stamp(in)
	return o.c.Do(ctx, in)
}

// stamp sets in's receive time, and a client_msg_id if it has none.
func stamp(in *pb.InboundMessage) {
	if in.ClientMsgId == "" {
		id := make([]byte, 12)
		_, _ = rand.Read(id)
		in.ClientMsgId = "api-" + strings.ToLower(idEncoding.EncodeToString(id))
	}
	in.ReceivedAt = time.Now().UnixMilli()
}
