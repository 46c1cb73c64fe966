package protocol

import (
	"fmt"
	"strings"
	"time"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// WebSocket close codes Parley uses (RFC 6455 §7.4.1).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001 // server shutting down or draining: reconnect elsewhere
	CloseProtocolError   = 1002 // broken WebSocket framing
	CloseUnsupportedData = 1003 // binary frame on the JSON subprotocol or text on proto
	CloseInvalidPayload  = 1007 // text frame that is not valid UTF-8
	ClosePolicy          = 1008 // no authentication in time, or too slow to read
	CloseTooBig          = 1009 // frame or message over the size limit
	CloseInternal        = 1011
)

// Errorf builds an Error with a code and a formatted message.
func Errorf(code pb.ErrorCode, format string, args ...any) *pb.Error {
	return &pb.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorFrame wraps an Error as the answer to request id.
func ErrorFrame(id uint64, e *pb.Error) *pb.ServerFrame {
	return &pb.ServerFrame{Id: id, Kind: &pb.ServerFrame_Error{Error: e}}
}

// Error is a request's failure as the protocol reports it: a documented
// code, a message for people and, for OVERLOADED and RATE_LIMITED, how long
// to wait. It is a Go error, so code paths return it like any other and
// the edge that answers the client turns it into its wire form with Proto.
type Error struct {
	Code       pb.ErrorCode
	Message    string
	RetryAfter time.Duration
}

// Reject builds an Error with a code and a formatted message.
func Reject(code pb.ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	return strings.TrimPrefix(e.Code.String(), "ERROR_CODE_") + ": " + e.Message
}

// Proto is the wire form of e.
func (e *Error) Proto() *pb.Error {
	return &pb.Error{Code: e.Code, Message: e.Message, RetryAfterMs: uint32(e.RetryAfter.Milliseconds())}
}
