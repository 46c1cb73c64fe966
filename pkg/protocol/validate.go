package protocol

import (
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/pkg/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Limits on client input.
const (
	MaxClientMsgIDLen  = 128
	MaxAttachments     = 16
	MaxAttachmentURL   = 2048
	DefaultMaxBodySize = 64 << 10
	MaxHistoryLimit    = 200
	DefaultHistoryPage = 50
)

// ValidRoom checks a room id field.
func ValidRoom(room string) *pb.Error {
	if !bus.ValidRoomID(room) {
		return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "room: must be 1-%d characters of [A-Za-z0-9_-]", bus.MaxRoomIDLen)
	}
	return nil
}

// ValidateSend checks a SendMessage against the body size limit.
func ValidateSend(s *pb.SendMessage, maxBody int) *pb.Error {
	if e := ValidRoom(s.GetRoom()); e != nil {
		return e
	}
	id := s.GetClientMsgId()
	if id == "" || len(id) > MaxClientMsgIDLen || !printableASCII(id) {
		return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "client_msg_id: must be 1-%d printable ASCII characters", MaxClientMsgIDLen)
	}
	b := s.GetBody()
	if b.GetText() == "" && len(b.GetAttachments()) == 0 {
		return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "body: needs text or an attachment")
	}
	if size := proto.Size(b); size > maxBody {
		return Errorf(pb.ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE, "body: %d bytes, limit %d", size, maxBody)
	}
	if !utf8.ValidString(b.GetText()) {
		return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "body.text: invalid UTF-8")
	}
	if len(b.GetAttachments()) > MaxAttachments {
		return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "body.attachments: at most %d", MaxAttachments)
	}
	for _, a := range b.GetAttachments() {
		if a.GetKind() == pb.Attachment_KIND_UNSPECIFIED || a.GetUrl() == "" || len(a.GetUrl()) > MaxAttachmentURL {
			return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "body.attachments: each needs a kind and a url of at most %d bytes", MaxAttachmentURL)
		}
	}
	return nil
}

// HistoryLimit clamps a requested page size.
func HistoryLimit(n uint32) int {
	switch {
	case n == 0:
		return DefaultHistoryPage
	case n > MaxHistoryLimit:
		return MaxHistoryLimit
	}
	return int(n)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
