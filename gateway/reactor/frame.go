package reactor

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// ErrUnsupportedData is a data frame of the type the connection's
// subprotocol does not use (binary on a text protocol or the reverse).
var ErrUnsupportedData = errors.New("wrong frame type for subprotocol")

// ErrIdleTimeout ends a connection that sent nothing for too long.
var ErrIdleTimeout = errors.New("idle timeout")

// ReasonSlowConsumer is the close reason (with 1008) of a connection whose
// send queue overflowed.
const ReasonSlowConsumer = "slow consumer: reconnect and resume"

// errShortClose is a close frame whose payload cannot hold a status code.
const errShortClose = ws.ProtocolError("close frame payload of one byte")

// CloseFor maps why a connection's input ended to the close code and reason
// the server answers with. Both transports use it, so they fail the same
// input the same way.
func CloseFor(err error) (ws.StatusCode, string) {
	var pe ws.ProtocolError
	switch {
	case errors.Is(err, wsutil.ErrInvalidUTF8), errors.Is(err, ws.ErrProtocolInvalidUTF8):
		return ws.StatusInvalidFramePayloadData, "text frame is not valid UTF-8"
	case errors.Is(err, wsutil.ErrFrameTooLarge), errors.Is(err, wsutil.ErrMessageTooLarge):
		return ws.StatusMessageTooBig, "message over the size limit"
	case errors.Is(err, ErrUnsupportedData):
		return ws.StatusUnsupportedData, ErrUnsupportedData.Error()
	case errors.Is(err, ErrIdleTimeout):
		return ws.StatusPolicyViolation, ErrIdleTimeout.Error()
	case errors.As(err, &pe):
		return ws.StatusProtocolError, string(pe)
	case errors.Is(err, ws.ErrHeaderLengthMSB), errors.Is(err, ws.ErrHeaderLengthUnexpected):
		return ws.StatusProtocolError, err.Error()
	default:
		return ws.StatusNormalClosure, ""
	}
}

// ParseClose reads a client's close frame payload: the code and reason to
// echo, or an error when the payload breaks RFC 6455 §5.5.1 / §7.4.
func ParseClose(payload []byte) (ws.StatusCode, string, error) {
	switch len(payload) {
	case 0:
		return ws.StatusNormalClosure, "", nil
	case 1:
		return 0, "", errShortClose
	}
	code, reason := ws.ParseCloseFrameData(payload)
	if err := ws.CheckCloseFrameData(code, reason); err != nil {
		return 0, "", err
	}
	return code, reason, nil
}

// AppendHeader appends the header of an unmasked final server frame with
// an n-byte payload to b.
func AppendHeader(b []byte, op ws.OpCode, n int) []byte {
	var h [10]byte
	return append(b, h[:putHeader(h[:], op, n)]...)
}

// putHeader writes the header of an unmasked final server frame into b
// (at least 10 bytes) and returns its length.
func putHeader(b []byte, op ws.OpCode, n int) int {
	b[0] = 0x80 | byte(op)
	switch {
	case n < 126:
		b[1] = byte(n)
		return 2
	case n <= 0xffff:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		return 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		return 10
	}
}

// headerSize is the length of a client frame header from its first two bytes.
func headerSize(b0, b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// decodeHeader decodes a complete frame header.
func decodeHeader(b []byte) (ws.Header, error) {
	h := ws.Header{
		Fin:    b[0]&0x80 != 0,
		Rsv:    (b[0] & 0x70) >> 4,
		OpCode: ws.OpCode(b[0] & 0x0f),
		Masked: b[1]&0x80 != 0,
	}
	i := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		i = 4
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return h, ws.ErrHeaderLengthMSB
		}
		h.Length = int64(u)
		i = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		copy(h.Mask[:], b[i:])
	}
	return h, nil
}

// parser reassembles a client's frames from reads of any size, without
// blocking: it keeps at most one partial header, the control frame or data
// message in progress, and nothing once input ends at a message boundary.
// It unmasks payloads in place in the buffer it is fed.
type parser struct {
	op  ws.OpCode // the data opcode the subprotocol uses; 0 allows both
	max int64     // largest data message

	hdr [ws.MaxHeaderSize]byte
	hn  int // bytes of hdr received

	frame   ws.Header // the frame in progress while inFrame
	inFrame bool
	left    int64 // its payload bytes still to come
	pos     int   // its payload bytes seen, the mask offset

	msgOp ws.OpCode // opcode of the data message in progress, 0 if none
	msg   []byte    // its payload, when it spans frames or reads
	valid int       // msg[:valid] is checked UTF-8 (text only)
	ctl   []byte    // control payload, when it spans reads
}

// idle reports whether the parser holds nothing, so it can be dropped.
func (p *parser) idle() bool {
	return p.hn == 0 && !p.inFrame && p.msgOp == 0
}

// emitFunc receives a complete data message or control frame; payload is
// valid only during the call. An error stops parsing and is returned by
// feed.
type emitFunc func(op ws.OpCode, payload []byte) error

// feed parses b, calling emit for each complete message and control frame.
// An error is fatal for the connection; CloseFor gives its close code.
func (p *parser) feed(b []byte, emit emitFunc) error {
	for {
		if !p.inFrame {
			if len(b) == 0 {
				return nil
			}
			n, err := p.readHeader(b)
			if err != nil {
				return err
			}
			b = b[n:]
			if !p.inFrame {
				return nil // the header continues in the next read
			}
		}
		if p.left > 0 && len(b) == 0 {
			return nil
		}
		n := int(min(int64(len(b)), p.left))
		chunk := b[:n]
		b = b[n:]
		ws.Cipher(chunk, p.frame.Mask, p.pos)
		// A payload that arrived whole in one read is used where it
		// lies; anything longer is gathered first.
		whole := p.pos == 0 && int64(n) == p.frame.Length
		p.pos += n
		p.left -= int64(n)
		payload, err := p.gather(chunk, whole)
		if err != nil {
			return err
		}
		if p.left == 0 {
			p.inFrame = false
			if err := p.endFrame(payload, emit); err != nil {
				return err
			}
		}
	}
}

// readHeader moves header bytes from b into hdr and returns how many it
// used; once the header is complete it checks it and starts the frame.
func (p *parser) readHeader(b []byte) (int, error) {
	n := 0
	for {
		need := 2
		if p.hn >= 2 {
			need = headerSize(p.hdr[0], p.hdr[1])
		}
		if p.hn == need {
			break
		}
		c := copy(p.hdr[p.hn:need], b[n:])
		if c == 0 {
			return n, nil
		}
		p.hn += c
		n += c
	}
	h, err := decodeHeader(p.hdr[:p.hn])
	p.hn = 0
	if err != nil {
		return n, err
	}
	return n, p.begin(h)
}

// begin checks a frame header against the connection's state and limits.
func (p *parser) begin(h ws.Header) error {
	state := ws.StateServerSide
	if p.msgOp != 0 {
		state |= ws.StateFragmented
	}
	if err := ws.CheckHeader(h, state); err != nil {
		return err
	}
	if h.OpCode == ws.OpText || h.OpCode == ws.OpBinary {
		if p.op != 0 && h.OpCode != p.op {
			return ErrUnsupportedData
		}
		p.msgOp = h.OpCode
	}
	if !h.OpCode.IsControl() {
		switch {
		case h.Length > p.max:
			return wsutil.ErrFrameTooLarge
		case int64(len(p.msg))+h.Length > p.max:
			return wsutil.ErrMessageTooLarge
		}
	}
	p.frame, p.inFrame, p.left, p.pos = h, true, h.Length, 0
	return nil
}

// gather adds an unmasked chunk of the current frame's payload to what the
// parser holds and returns the payload so far. Text is checked as it
// arrives, so invalid UTF-8 fails fast, even when split across fragments.
func (p *parser) gather(chunk []byte, whole bool) ([]byte, error) {
	if p.frame.OpCode.IsControl() {
		if whole {
			return chunk, nil
		}
		p.ctl = append(p.ctl, chunk...)
		return p.ctl, nil
	}
	payload := chunk
	if !whole || !p.frame.Fin || len(p.msg) > 0 {
		p.msg = append(p.msg, chunk...)
		payload = p.msg
	}
	if p.msgOp == ws.OpText {
		final := p.frame.Fin && p.left == 0
		n, ok := checkUTF8(payload[p.valid:], final)
		if !ok {
			return nil, wsutil.ErrInvalidUTF8
		}
		p.valid += n
	}
	return payload, nil
}

// endFrame finishes the current frame: control frames and final data
// frames are emitted, and the parser lets go of their buffers.
func (p *parser) endFrame(payload []byte, emit emitFunc) error {
	if p.frame.OpCode.IsControl() {
		p.ctl = nil
		return emit(p.frame.OpCode, payload)
	}
	if !p.frame.Fin {
		return nil
	}
	op := p.msgOp
	p.msgOp, p.msg, p.valid = 0, nil, 0
	return emit(op, payload)
}

// checkUTF8 checks b and returns the length of its valid prefix. Unless
// final, b may end in the first bytes of a rune that the next fragment
// completes; anything else invalid fails.
func checkUTF8(b []byte, final bool) (int, bool) {
	if utf8.Valid(b) {
		return len(b), true
	}
	i := 0
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i, !final && !utf8.FullRune(b[i:])
		}
		i += size
	}
	return i, true
}
