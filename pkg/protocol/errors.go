package protocol

import (
	"encoding/json"
	"fmt"
	"net/http"
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
// to wait. It is Parley's one error vocabulary: the WebSocket protocol, the
// HTTP API and the request/reply services (accounts, history) all answer
// with it. It is a Go error, so code paths return it like any other, and
// the edge that answers turns it into its wire form: Proto for protobuf,
// its JSON encoding ({"code": "<CODE>", "message": …}, codes without the
// ERROR_CODE_ prefix) for JSON, and HTTPStatus for an HTTP status.
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

// FromProto is the Error of its wire form e, as a peer answered it.
func FromProto(e *pb.Error) *Error {
	return &Error{Code: e.GetCode(), Message: e.GetMessage(), RetryAfter: time.Duration(e.GetRetryAfterMs()) * time.Millisecond}
}

// CodeName is code as the JSON encodings write it: without the
// ERROR_CODE_ prefix (ROOM_NOT_FOUND).
func CodeName(code pb.ErrorCode) string { return strings.TrimPrefix(code.String(), "ERROR_CODE_") }

// errorJSON is Error's JSON encoding.
type errorJSON struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	RetryAfterMs int64  `json:"retry_after_ms,omitempty"`
}

// MarshalJSON writes e with its code's name.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(errorJSON{Code: CodeName(e.Code), Message: e.Message, RetryAfterMs: e.RetryAfter.Milliseconds()})
}

// UnmarshalJSON reads an Error. A code this build does not know (from a
// newer peer) reads as ERROR_CODE_UNSPECIFIED, its name kept in the message.
func (e *Error) UnmarshalJSON(b []byte) error {
	var j errorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	code, ok := pb.ErrorCode_value["ERROR_CODE_"+j.Code]
	*e = Error{Code: pb.ErrorCode(code), Message: j.Message, RetryAfter: time.Duration(j.RetryAfterMs) * time.Millisecond}
	if !ok {
		e.Message = j.Code + ": " + j.Message
	}
	return nil
}

// httpStatus is the HTTP status of each code, the one table every HTTP
// answer takes its status from (schemas/README.md, Error codes).
var httpStatus = map[pb.ErrorCode]int{
	pb.ErrorCode_ERROR_CODE_MALFORMED_FRAME:       http.StatusBadRequest,
	pb.ErrorCode_ERROR_CODE_UNKNOWN_FRAME:         http.StatusBadRequest,
	pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT:      http.StatusBadRequest,
	pb.ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE:     http.StatusBadRequest,
	pb.ErrorCode_ERROR_CODE_ALREADY_AUTHENTICATED: http.StatusBadRequest,
	pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD:         http.StatusBadRequest,
	pb.ErrorCode_ERROR_CODE_TARGET_IS_SELF:        http.StatusBadRequest,
	pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED:       http.StatusUnauthorized,
	pb.ErrorCode_ERROR_CODE_AUTH_FAILED:           http.StatusUnauthorized,
	pb.ErrorCode_ERROR_CODE_INVALID_CREDENTIALS:   http.StatusUnauthorized,
	pb.ErrorCode_ERROR_CODE_FORBIDDEN:             http.StatusForbidden,
	pb.ErrorCode_ERROR_CODE_BLOCKED:               http.StatusForbidden,
	pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND:        http.StatusNotFound,
	pb.ErrorCode_ERROR_CODE_USER_NOT_FOUND:        http.StatusNotFound,
	pb.ErrorCode_ERROR_CODE_REQUEST_NOT_FOUND:     http.StatusNotFound,
	pb.ErrorCode_ERROR_CODE_NOT_FRIENDS:           http.StatusNotFound,
	pb.ErrorCode_ERROR_CODE_NOT_FOUND:             http.StatusNotFound,
	pb.ErrorCode_ERROR_CODE_METHOD_NOT_ALLOWED:    http.StatusMethodNotAllowed,
	pb.ErrorCode_ERROR_CODE_HANDLE_TAKEN:          http.StatusConflict,
	pb.ErrorCode_ERROR_CODE_ALREADY_FRIENDS:       http.StatusConflict,
	pb.ErrorCode_ERROR_CODE_REQUEST_EXISTS:        http.StatusConflict,
	pb.ErrorCode_ERROR_CODE_RATE_LIMITED:          http.StatusTooManyRequests,
	pb.ErrorCode_ERROR_CODE_INTERNAL:              http.StatusInternalServerError,
	pb.ErrorCode_ERROR_CODE_UNAVAILABLE:           http.StatusServiceUnavailable,
	pb.ErrorCode_ERROR_CODE_OVERLOADED:            http.StatusServiceUnavailable,
	pb.ErrorCode_ERROR_CODE_FILE_TOO_LARGE:        http.StatusRequestEntityTooLarge,
	pb.ErrorCode_ERROR_CODE_QUOTA_EXCEEDED:        http.StatusRequestEntityTooLarge,
	pb.ErrorCode_ERROR_CODE_IMAGE_TOO_LARGE:       http.StatusUnprocessableEntity,
	pb.ErrorCode_ERROR_CODE_OFFSET_MISMATCH:       http.StatusConflict,
	pb.ErrorCode_ERROR_CODE_NOT_READY:             http.StatusConflict,
	pb.ErrorCode_ERROR_CODE_LINK_EXPIRED:          http.StatusForbidden,
}

// HTTPStatus is e's HTTP status: 502 for a code this build does not know,
// which a newer service behind the gateway answered with.
func (e *Error) HTTPStatus() int {
	if s, ok := httpStatus[e.Code]; ok {
		return s
	}
	return http.StatusBadGateway
}
