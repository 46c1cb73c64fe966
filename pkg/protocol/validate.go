package protocol

import (
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

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
	if !ValidRoomID(room) {
		return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "room: must be 1-%d characters of [A-Za-z0-9_-]", MaxIDLen)
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
	if e := validateKind(s); e != nil {
		return e
	}
	b := s.GetBody()
	if needsBody(s.GetKind()) && b.GetText() == "" && len(b.GetAttachments()) == 0 {
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

// Limits on message references.
const (
	MaxReactionLen = 32
	MaxMentions    = 50
)

// validateKind checks the fields a kind needs. Clients may only send
// regular messages, edits, deletes and reactions; membership and room
// changes come from the HTTP API.
func validateKind(s *pb.SendMessage) *pb.Error {
	switch k := s.GetKind(); k {
	case pb.MessageKind_MESSAGE_KIND_TEXT:
		if s.GetRefSeq() != 0 || s.GetReaction() != "" {
			return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "ref_seq and reaction: only for edits, deletes and reactions")
		}
	case pb.MessageKind_MESSAGE_KIND_EDIT, pb.MessageKind_MESSAGE_KIND_DELETE:
		if s.GetRefSeq() == 0 || s.GetReaction() != "" {
			return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "%s: needs ref_seq and no reaction", k)
		}
	case pb.MessageKind_MESSAGE_KIND_REACTION_ADD, pb.MessageKind_MESSAGE_KIND_REACTION_REMOVE:
		if r := s.GetReaction(); s.GetRefSeq() == 0 || r == "" || len(r) > MaxReactionLen || !utf8.ValidString(r) {
			return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "%s: needs ref_seq and a reaction of 1-%d bytes", k, MaxReactionLen)
		}
	default:
		return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "kind %s cannot be sent; use the rooms API", k)
	}
	if len(s.GetMentions()) > MaxMentions {
		return Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "mentions: at most %d", MaxMentions)
	}
	return nil
}

// needsBody reports whether a kind carries a body.
func needsBody(k pb.MessageKind) bool {
	return k == pb.MessageKind_MESSAGE_KIND_TEXT || k == pb.MessageKind_MESSAGE_KIND_EDIT
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
