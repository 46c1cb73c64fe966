package processor

import (
	"context"
	"errors"
	"strconv"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/internal/media/refs"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// Attachments records which uploads a room message carries (package
// pkg/media/refs): an upload becomes readable by a room's members when a
// message carrying it is stored there, and unreachable when the last such
// message is deleted.
type Attachments interface {
	// Attach records the uploads among urls for message msg (its seq) of
	// room, sent by sender; refs.ErrNotAttachable refuses an upload the
	// sender may not send. It runs before the message is stored: a message
	// whose append then fails leaves a reference to a seq that another
	// message of the same room gets, which keeps the upload readable by the
	// same members (never by others) until that message is deleted.
	Attach(ctx context.Context, sender, room, msg string, urls []string) error
	// Detach drops message msg's references; uploads no other message
	// carries are deleted.
	Detach(ctx context.Context, room, msg string) error
}

// attach records a message's uploads before it is stored.
func (pt *partition) attach(ctx context.Context, in *pb.InboundMessage, seq uint64) error {
	att := pt.p.cfg.Attachments
	list := in.GetBody().GetAttachments()
	if att == nil || len(list) == 0 {
		return nil
	}
	urls := make([]string, len(list))
	for i, a := range list {
		urls[i] = a.GetUrl()
	}
	err := att.Attach(ctx, in.Sender, in.Room, strconv.FormatUint(seq, 10), urls)
	if errors.Is(err, refs.ErrNotAttachable) {
		return protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "%v", err)
	}
	if err != nil {
		return transient(err)
	}
	return nil
}

// detach drops the uploads of a message just deleted. A failure leaves
// the upload readable by the room's members; it is logged.
func (pt *partition) detach(ctx context.Context, in *pb.InboundMessage) {
	att := pt.p.cfg.Attachments
	if att == nil || in.Kind != pb.MessageKind_MESSAGE_KIND_DELETE {
		return
	}
	if err := att.Detach(ctx, in.Room, strconv.FormatUint(in.RefSeq, 10)); err != nil {
		pt.p.log.Warn("uploads of a deleted message not released", zap.String("room", in.Room), zap.Uint64("ref_seq", in.RefSeq), zap.Error(err))
	}
}
