package processor

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/sequencer"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// How a send's failures are retried before it is answered.
const (
	// sendTimeout bounds the work on one send, retries included; the
	// gateway's attempt timeout is longer, so it does not resend meanwhile.
	sendTimeout = 4 * time.Second
	// changeTimeout bounds a room change, which reads and writes a
	// membership per target (up to MaxTargetsPerEvent). A gateway resend
	// meanwhile waits in the room's queue and is answered as a duplicate.
	changeTimeout  = 20 * time.Second
	publishTimeout = 2 * time.Second
	// maxFenced bounds the reloads after fencing: each means another
	// writer appended to the room, which a lease makes rare.
	maxFenced     = 8
	maxTransient  = 3
	firstBackoff  = 50 * time.Millisecond
	maxRetryDelay = 500 * time.Millisecond
)

// errTransient marks failures worth retrying: the store or the bus did not
// answer. Anything else that is not a *protocol.Error is unexpected.
type errTransient struct{ err error }

func (e errTransient) Error() string { return e.err.Error() }
func (e errTransient) Unwrap() error { return e.err }

// transient marks a store or bus error as worth retrying.
func transient(err error) error {
	if err == nil {
		return nil
	}
	return errTransient{err}
}

func notFound(room string) *protocol.Error {
	return protocol.Reject(pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND, "room %s does not exist or you are not a member", room)
}

// isFenced tells a publish refused because the room's last message is not
// the one this processor expected: another writer appended, or its state
// is stale.
func isFenced(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// decide sequences a send and classifies its failures: a rejection is
// answered as is; fencing reloads the room and tries again; a transient
// failure is retried with backoff, then answered UNAVAILABLE; anything
// else is answered INTERNAL. The room is never blocked by one message.
func (pt *partition) decide(r *room, in *pb.InboundMessage) *pb.SendResult {
	timeout := sendTimeout
	if isRoomChange(in.Kind) {
		timeout = changeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	log, stats := pt.p.log, &pt.p.stats
	fenced, failed := 0, 0
	for backoff := firstBackoff; ; backoff = min(2*backoff, maxRetryDelay) {
		res, err := pt.sequence(ctx, r, in)
		var rejection *protocol.Error
		switch {
		case err == nil:
			return res
		case errors.As(err, &rejection):
			stats.Rejected.Add(1)
			return sequencer.ErrorResult(in, rejection)
		case isFenced(err) && fenced < maxFenced:
			fenced++
			stats.Fenced.Add(1)
			log.Info("fenced, reloading room", zap.String("room", in.Room), zap.Error(err))
			r.state = nil
			continue
		case errors.As(err, new(errTransient)):
			// A publish whose answer was lost may still have been stored:
			// the next attempt's fencing finds out and reloads.
			if failed++; failed < maxTransient && ctx.Err() == nil {
				log.Warn("sequencing failed, retrying", zap.String("room", in.Room), zap.Error(err))
				time.Sleep(backoff)
				continue
			}
			stats.Unavailable.Add(1)
			log.Warn("sequencing failed, answering UNAVAILABLE", zap.String("room", in.Room), zap.Error(err))
			return sequencer.ErrorResult(in, protocol.Reject(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "message not stored; retry with the same client_msg_id"))
		default:
			stats.Internal.Add(1)
			r.state = nil
			log.Error("sequencing failed", zap.String("room", in.Room), zap.String("client_msg_id", in.ClientMsgId), zap.Error(err))
			return sequencer.ErrorResult(in, protocol.Reject(pb.ErrorCode_ERROR_CODE_INTERNAL, "message not stored: internal error"))
		}
	}
}

// sequence decides one send: a duplicate, a rejection (*protocol.Error),
// or the next seq of its room, stored in CHAT_MSG.
func (pt *partition) sequence(ctx context.Context, r *room, in *pb.InboundMessage) (*pb.SendResult, error) {
	change := isRoomChange(in.Kind)
	if !change {
		if e := protocol.ValidateSend(sendOf(in), pt.p.cfg.MaxBodySize); e != nil {
			return nil, &protocol.Error{Code: e.Code, Message: e.Message}
		}
	}
	st, err := pt.state(ctx, r)
	if err != nil {
		return nil, err
	}
	if seq, ok := st.recent.get(in.Sender, in.ClientMsgId); ok {
		pt.p.stats.Duplicates.Add(1)
		return &pb.SendResult{Room: in.Room, ClientMsgId: in.ClientMsgId, Seq: seq, Duplicate: true}, nil
	}
	member, found, err := pt.member(ctx, st, in.Room, in.Sender)
	if err != nil {
		return nil, err
	}
	if change {
		err = pt.applyRoomChange(ctx, in, member, found, st)
	} else if !found {
		err = notFound(in.Room)
	} else {
		err = pt.checkSend(ctx, in, member, st)
	}
	if err == nil && !change {
		err = pt.attach(ctx, in, st.seq+1)
	}
	if err != nil {
		return nil, err
	}
	res, err := pt.append(ctx, in, st)
	if err == nil {
		pt.detach(ctx, in)
	}
	return res, err
}

// checkSend applies the room's rules to a client message.
func (pt *partition) checkSend(ctx context.Context, in *pb.InboundMessage, member store.Member, st *roomState) error {
	if st.kind == store.RoomChannel && !canManage(member.Role) && in.Kind != pb.MessageKind_MESSAGE_KIND_REACTION_ADD && in.Kind != pb.MessageKind_MESSAGE_KIND_REACTION_REMOVE {
		return forbidden("only owners and admins post to channel %s", in.Room)
	}
	if st.kind == store.RoomDirect && len(st.pair) == 2 {
		blocked, err := pt.isBlocked(ctx, st)
		if err != nil {
			return err
		}
		if blocked {
			return forbidden("this conversation is blocked")
		}
	}
	return pt.checkReference(ctx, in, member.Role, st)
}

// sendOf is the client request an inbound message carries.
func sendOf(in *pb.InboundMessage) *pb.SendMessage {
	return &pb.SendMessage{Room: in.Room, ClientMsgId: in.ClientMsgId, Body: in.Body, Kind: in.Kind,
		RefSeq: in.RefSeq, Reaction: in.Reaction, ReplyToSeq: in.ReplyToSeq, Mentions: in.Mentions}
}

// append publishes the next message of a room to CHAT_MSG, expecting the
// room's last message to be the one st knows (fencing).
func (pt *partition) append(ctx context.Context, in *pb.InboundMessage, st *roomState) (*pb.SendResult, error) {
	m := &pb.Message{
		Room:        in.Room,
		Seq:         st.seq + 1,
		Sender:      in.Sender,
		ClientMsgId: in.ClientMsgId,
		SentAt:      time.Now().UnixMilli(),
		Body:        in.Body,
		Kind:        in.Kind,
		RefSeq:      in.RefSeq,
		Reaction:    in.Reaction,
		ReplyToSeq:  in.ReplyToSeq,
		Mentions:    in.Mentions,
		TargetUsers: in.TargetUsers,
		Role:        in.Role,
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := nats.NewMsg(bus.MsgSubject(in.Room))
	out.Data = data
	out.Header.Set(bus.HeaderSeq, strconv.FormatUint(m.Seq, 10))
	if m.Kind == pb.MessageKind_MESSAGE_KIND_MEMBER_LEFT || m.Kind == pb.MessageKind_MESSAGE_KIND_MEMBER_REMOVED {
		// Gateways drop these users' subscriptions when the event passes.
		for _, u := range m.TargetUsers {
			out.Header.Add(bus.HeaderLeaves, u)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	ack, err := pt.p.js.PublishMsg(pctx, out, jetstream.WithExpectLastSequencePerSubject(st.streamSeq))
	if err != nil {
		if errors.As(err, new(*jetstream.APIError)) {
			return nil, err
		}
		return nil, transient(err)
	}
	st.seq, st.streamSeq = m.Seq, ack.Sequence
	st.recent.add(m.Sender, m.ClientMsgId, m.Seq, m.SentAt)
	pt.p.stats.Sequenced.Add(1)
	return &pb.SendResult{Room: in.Room, ClientMsgId: in.ClientMsgId, Seq: m.Seq, SentAt: m.SentAt}, nil
}
