package reactor

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// errStop ends a fuzzed parse at a valid close frame, as errPeerClosed
// ends a connection's.
var errStop = errors.New("peer closed")

// parseOutcome is what a parser made of a client's byte stream.
type parseOutcome struct {
	msgs []msg
	err  error
	idle bool // at the end, when no error stopped it
}

// sameAs reports whether two outcomes would look the same to the
// connection: the same messages, then the same end and close code.
func (o parseOutcome) sameAs(p parseOutcome) bool {
	if len(o.msgs) != len(p.msgs) || (o.err == nil) != (p.err == nil) || o.idle != p.idle {
		return false
	}
	for i := range o.msgs {
		if o.msgs[i] != p.msgs[i] {
			return false
		}
	}
	if o.err == nil {
		return true
	}
	c1, r1 := CloseFor(o.err)
	c2, r2 := CloseFor(p.err)
	return c1 == c2 && r1 == r2 && errors.Is(o.err, errStop) == errors.Is(p.err, errStop)
}

// fuzzParse runs stream through a parser the way a poller does: read by
// read (at most chunk bytes each) through one buffer that is overwritten
// after every feed, a fresh parser at each message boundary and a copy of
// the parser value when a frame continues in the next read. Each read is
// a slice whose capacity ends where its data does, so the parser cannot
// reach past its input without panicking. Every emitted message and
// control frame is checked against the limits the parser enforces, and a
// close frame is read with ParseClose, as the poller does.
func fuzzParse(t *testing.T, op ws.OpCode, limit int64, stream []byte, chunk int) parseOutcome {
	var out parseOutcome
	emit := func(got ws.OpCode, payload []byte) error {
		checkEmitted(t, op, limit, got, payload)
		out.msgs = append(out.msgs, msg{got, string(payload)})
		if got != ws.OpClose {
			return nil
		}
		if _, _, err := checkClose(t, payload); err != nil {
			return err
		}
		return errStop
	}
	buf := make([]byte, chunk)
	p := &parser{op: op, max: limit}
	for len(stream) > 0 {
		n := copy(buf, stream)
		stream = stream[n:]
		out.err = p.feed(buf[:n:n], emit)
		for i := range buf {
			buf[i] = 0xa5 // the next read's bytes: nothing of this one may be kept
		}
		if out.err != nil {
			return out
		}
		if p.idle() {
			p = &parser{op: op, max: limit}
		} else {
			keep := *p
			p = &keep
		}
	}
	out.idle = p.idle()
	return out
}

// checkEmitted checks one message or control frame the parser emitted.
func checkEmitted(t *testing.T, op ws.OpCode, limit int64, got ws.OpCode, payload []byte) {
	t.Helper()
	switch got {
	case ws.OpText, ws.OpBinary:
		if op != 0 && got != op {
			t.Fatalf("emitted a %v message on a %v connection", got, op)
		}
		if int64(len(payload)) > limit {
			t.Fatalf("emitted a %d-byte message over the %d-byte limit", len(payload), limit)
		}
		if got == ws.OpText && !utf8.Valid(payload) {
			t.Fatalf("emitted a text message that is not UTF-8: %q", payload)
		}
	case ws.OpPing, ws.OpPong, ws.OpClose:
		if len(payload) > ws.MaxControlFramePayloadSize {
			t.Fatalf("emitted a %v frame of %d bytes", got, len(payload))
		}
	default:
		t.Fatalf("emitted opcode %v", got)
	}
}

// checkClose reads a close frame's payload with ParseClose: an accepted
// one is a valid code and UTF-8 reason that encode back to the payload;
// a refused one fails the connection as a protocol error or bad UTF-8.
func checkClose(t *testing.T, payload []byte) (ws.StatusCode, string, error) {
	t.Helper()
	code, reason, err := ParseClose(payload)
	switch {
	case err != nil:
		if c, _ := CloseFor(err); c != ws.StatusProtocolError && c != ws.StatusInvalidFramePayloadData {
			t.Fatalf("close payload %x refused with %v, which closes with %d", payload, err, c)
		}
	case len(payload) == 0:
		if code != ws.StatusNormalClosure || reason != "" {
			t.Fatalf("empty close payload read as %d %q", code, reason)
		}
	default:
		if ws.CheckCloseFrameData(code, reason) != nil || !bytes.Equal(ws.NewCloseFrameBody(code, reason), payload) {
			t.Fatalf("close payload %x accepted as %d %q", payload, code, reason)
		}
	}
	return code, reason, err
}

// checkHeaderDecode decodes the header at the start of b, if b holds one
// whole, and compares it with gobwas/ws's reading of the same bytes: the
// same length, fields and error. An accepted header written again by
// gobwas/ws reads back the same, and byte for byte the same when its
// length was in the shortest form (RFC 6455 requires it of senders, the
// parser does not insist).
func checkHeaderDecode(t *testing.T, b []byte) {
	t.Helper()
	if len(b) < 2 || len(b) < headerSize(b[0], b[1]) {
		return
	}
	b = b[:headerSize(b[0], b[1])]
	h, err := decodeHeader(bytes.Clone(b))
	r := bytes.NewReader(b)
	want, wantErr := ws.ReadHeader(r)
	if r.Len() != 0 && wantErr == nil {
		t.Fatalf("header %x: headerSize %d, gobwas/ws read %d bytes", b, len(b), len(b)-r.Len())
	}
	if err != wantErr {
		t.Fatalf("header %x: error %v, gobwas/ws says %v", b, err, wantErr)
	}
	if err != nil {
		return
	}
	if h != want {
		t.Fatalf("header %x: decoded %+v, gobwas/ws reads %+v", b, h, want)
	}
	var w bytes.Buffer
	if err := ws.WriteHeader(&w, h); err != nil {
		t.Fatalf("header %+v: %v", h, err)
	}
	again, err := decodeHeader(w.Bytes())
	if err != nil || again != h {
		t.Fatalf("header %x: %+v re-encodes to %x, which decodes to %+v %v", b, h, w.Bytes(), again, err)
	}
	if lengthForm(b[1]) == lengthForm(w.Bytes()[1]) && !bytes.Equal(w.Bytes(), b) {
		t.Fatalf("header %x: %+v re-encodes to %x", b, h, w.Bytes())
	}
}

// lengthForm is the form of a header's payload length from its second
// byte: 7 bits (0), 16 bits (126) or 64 bits (127).
func lengthForm(b1 byte) byte {
	if l := b1 & 0x7f; l >= 126 {
		return l
	}
	return 0
}

// FuzzParser feeds arbitrary client bytes to the epoll transport's frame
// parser. It must never panic or reach past a read's bytes, emit only
// what the connection accepts (checkEmitted, checkClose), decode headers
// as gobwas/ws does, and make the same of a stream whatever the reads
// it arrives in: whole, or chunk+1 bytes at a time. mode picks the
// subprotocol's data opcode (both, text, binary) and the message limit.
func FuzzParser(f *testing.F) {
	stream, _ := mixedStream()
	f.Add(stream, uint8(0), uint8(0))
	f.Add(stream, uint8(6), uint8(0))
	f.Add(clientFrame(ws.OpText, true, []byte(`{"id":"1","auth":{"token":"t"}}`)), uint8(3), uint8(1))
	f.Add(concat(
		clientFrame(ws.OpBinary, false, bytes.Repeat([]byte{7}, 200)),
		clientFrame(ws.OpPing, true, []byte("p")),
		clientFrame(ws.OpContinuation, true, bytes.Repeat([]byte{8}, 70000)),
	), uint8(255), uint8(2))
	f.Add(clientFrame(ws.OpBinary, true, make([]byte, 150)), uint8(9), uint8(5)) // over the small limit
	f.Add(clientFrame(ws.OpText, false, []byte("ok \xe2\x82")), uint8(4), uint8(1))
	f.Add(clientFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")), uint8(1), uint8(0))
	f.Add(clientFrame(ws.OpClose, true, []byte{3, 0xe8, 0xff}), uint8(0), uint8(0))
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, uint8(1), uint8(0)) // length MSB set
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, uint8(0), uint8(0))               // unmasked
	f.Fuzz(func(t *testing.T, stream []byte, chunk, mode uint8) {
		op := []ws.OpCode{0, ws.OpText, ws.OpBinary}[mode%3]
		limit := int64(1 << 20)
		if mode/3%2 == 1 {
			limit = 100
		}
		checkHeaderDecode(t, stream)
		whole := fuzzParse(t, op, limit, stream, max(len(stream), 1))
		split := fuzzParse(t, op, limit, stream, int(chunk)+1)
		if !whole.sameAs(split) {
			t.Fatalf("whole: %q, %v, idle %v\nin reads of %d bytes: %q, %v, idle %v",
				whole.msgs, whole.err, whole.idle, int(chunk)+1, split.msgs, split.err, split.idle)
		}
	})
}
