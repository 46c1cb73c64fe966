package reactor

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

type msg struct {
	op      ws.OpCode
	payload string
}

// clientFrame encodes a frame as a client sends it: masked.
func clientFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	var b bytes.Buffer
	if err := ws.WriteFrame(&b, ws.MaskFrame(ws.NewFrame(op, fin, payload))); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func concat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// parseChunks feeds copies of chunks (the parser unmasks in place) and
// returns what was emitted and the first error.
func parseChunks(p *parser, chunks ...[]byte) ([]msg, error) {
	var out []msg
	emit := func(op ws.OpCode, payload []byte) error {
		out = append(out, msg{op, string(payload)})
		return nil
	}
	for _, c := range chunks {
		if err := p.feed(bytes.Clone(c), emit); err != nil {
			return out, err
		}
	}
	return out, nil
}

func newParser(op ws.OpCode) *parser { return &parser{op: op, max: 1 << 20} }

// mixedStream has every header length, fragmentation with control frames
// between fragments, multi-byte runes split across fragments, and an
// empty message.
func mixedStream() ([]byte, []msg) {
	long := strings.Repeat("x", 300)
	stream := concat(
		clientFrame(ws.OpText, true, []byte("hello")),
		clientFrame(ws.OpBinary, true, []byte(long)),
		clientFrame(ws.OpText, false, []byte("h\xc3")), // é split across fragments
		clientFrame(ws.OpPing, true, []byte("p1")),
		clientFrame(ws.OpContinuation, false, []byte("\xa9llo w")),
		clientFrame(ws.OpPong, true, nil),
		clientFrame(ws.OpContinuation, false, nil),
		clientFrame(ws.OpContinuation, true, []byte("\xc3\xb6rld")),
		clientFrame(ws.OpText, true, nil),
		clientFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")),
	)
	want := []msg{
		{ws.OpText, "hello"},
		{ws.OpBinary, long},
		{ws.OpPing, "p1"},
		{ws.OpPong, ""},
		{ws.OpText, "héllo wörld"},
		{ws.OpText, ""},
		{ws.OpClose, string(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))},
	}
	return stream, want
}

func checkMsgs(t *testing.T, label string, got, want []msg) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d messages, want %d: %q", label, len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: message %d is %v %q, want %v %q", label, i, got[i].op, got[i].payload, want[i].op, want[i].payload)
		}
	}
}

func TestParserEverySplitPoint(t *testing.T) {
	stream, want := mixedStream()
	for i := 0; i <= len(stream); i++ {
		p := newParser(0)
		got, err := parseChunks(p, stream[:i], stream[i:])
		if err != nil {
			t.Fatalf("split at %d: %v", i, err)
		}
		checkMsgs(t, fmt.Sprintf("split at %d", i), got, want)
		if !p.idle() {
			t.Fatalf("split at %d: parser holds state after the last frame", i)
		}
	}
}

func TestParserOneByteAtATime(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, 70000) // 64-bit length
	stream, want := mixedStream()
	stream = concat(stream, clientFrame(ws.OpBinary, true, big))
	want = append(want, msg{ws.OpBinary, string(big)})
	p := newParser(0)
	var chunks [][]byte
	for i := range stream {
		chunks = append(chunks, stream[i:i+1])
	}
	got, err := parseChunks(p, chunks...)
	if err != nil {
		t.Fatal(err)
	}
	checkMsgs(t, "byte by byte", got, want)
}

// The parser lets go of its buffers at every message boundary, so a
// connection between messages holds no parser at all.
func TestParserIdleBetweenMessages(t *testing.T) {
	p := newParser(ws.OpText)
	f := clientFrame(ws.OpText, true, []byte("abcdef"))
	for i := 1; i < len(f); i++ {
		if _, err := parseChunks(p, f[:i]); err != nil {
			t.Fatal(err)
		}
		if p.idle() {
			t.Fatalf("idle after %d of %d bytes", i, len(f))
		}
		if _, err := parseChunks(p, f[i:]); err != nil {
			t.Fatal(err)
		}
		if !p.idle() || p.msg != nil || p.ctl != nil {
			t.Fatalf("split at %d: state kept after the frame", i)
		}
	}
}

func TestParserUnmasks(t *testing.T) {
	payload := []byte("masked payload spanning reads")
	f := ws.MaskFrameWith(ws.NewTextFrame(payload), [4]byte{1, 2, 3, 4})
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, f)
	wire := b.Bytes()
	if bytes.Contains(wire, payload) {
		t.Fatal("payload not masked on the wire")
	}
	got, err := parseChunks(newParser(ws.OpText), wire[:9], wire[9:17], wire[17:])
	if err != nil {
		t.Fatal(err)
	}
	checkMsgs(t, "unmask", got, []msg{{ws.OpText, string(payload)}})
}

// closeCode runs chunks through a parser and returns the close code of the
// error it fails with.
func closeCode(t *testing.T, p *parser, chunks ...[]byte) (ws.StatusCode, []msg) {
	t.Helper()
	got, err := parseChunks(p, chunks...)
	if err == nil {
		t.Fatalf("no error; emitted %q", got)
	}
	code, _ := CloseFor(err)
	return code, got
}

func TestParserInvalidInput(t *testing.T) {
	unmasked := func(op ws.OpCode, payload []byte) []byte {
		var b bytes.Buffer
		_ = ws.WriteFrame(&b, ws.NewFrame(op, true, payload))
		return b.Bytes()
	}
	withRsv := clientFrame(ws.OpText, true, []byte("x"))
	withRsv[0] |= 0x40
	reserved := clientFrame(ws.OpText, true, []byte("x"))
	reserved[0] = reserved[0]&0xf0 | 0x3
	small := &parser{op: ws.OpBinary, max: 100}
	for _, c := range []struct {
		name   string
		p      *parser
		chunks [][]byte
		want   ws.StatusCode
	}{
		{"unmasked frame", newParser(0), [][]byte{unmasked(ws.OpBinary, []byte{1})}, ws.StatusProtocolError},
		{"rsv bit", newParser(0), [][]byte{withRsv}, ws.StatusProtocolError},
		{"reserved opcode", newParser(0), [][]byte{reserved}, ws.StatusProtocolError},
		{"continuation first", newParser(0), [][]byte{clientFrame(ws.OpContinuation, true, []byte("x"))}, ws.StatusProtocolError},
		{"new message inside a fragmented one", newParser(0), [][]byte{
			clientFrame(ws.OpText, false, []byte("a")), clientFrame(ws.OpText, true, []byte("b"))}, ws.StatusProtocolError},
		{"fragmented control frame", newParser(0), [][]byte{clientFrame(ws.OpPing, false, nil)}, ws.StatusProtocolError},
		{"control payload over 125", newParser(0), [][]byte{clientFrame(ws.OpPing, true, make([]byte, 126))}, ws.StatusProtocolError},
		{"binary on a text protocol", newParser(ws.OpText), [][]byte{clientFrame(ws.OpBinary, true, []byte{1})}, ws.StatusUnsupportedData},
		{"text on a binary protocol", newParser(ws.OpBinary), [][]byte{clientFrame(ws.OpText, true, []byte("x"))}, ws.StatusUnsupportedData},
		{"frame over the limit", small, [][]byte{clientFrame(ws.OpBinary, true, make([]byte, 101))}, ws.StatusMessageTooBig},
		{"fragments over the limit", &parser{op: ws.OpBinary, max: 100}, [][]byte{
			clientFrame(ws.OpBinary, false, make([]byte, 60)), clientFrame(ws.OpContinuation, true, make([]byte, 60))}, ws.StatusMessageTooBig},
		{"invalid UTF-8", newParser(ws.OpText), [][]byte{clientFrame(ws.OpText, true, []byte("{\xff\xfe}"))}, ws.StatusInvalidFramePayloadData},
		{"invalid UTF-8 split across fragments", newParser(ws.OpText), [][]byte{
			clientFrame(ws.OpText, false, []byte("ok \xc3")), clientFrame(ws.OpContinuation, true, []byte("A"))}, ws.StatusInvalidFramePayloadData},
		{"truncated rune at the end of a message", newParser(ws.OpText), [][]byte{
			clientFrame(ws.OpText, false, []byte("ok")), clientFrame(ws.OpContinuation, true, []byte("\xe2\x82"))}, ws.StatusInvalidFramePayloadData},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, got := closeCode(t, c.p, c.chunks...); code != c.want {
				t.Fatalf("close code %d, want %d (emitted %q)", code, c.want, got)
			}
		})
	}
}

// A too large frame fails on its header, before its payload is read.
func TestParserSizeFailsFast(t *testing.T) {
	f := clientFrame(ws.OpBinary, true, make([]byte, 5000))
	if code, _ := closeCode(t, &parser{max: 4096}, f[:8]); code != ws.StatusMessageTooBig {
		t.Fatalf("close code %d", code)
	}
}

// Invalid UTF-8 fails as soon as it arrives, not when the message ends.
func TestParserUTF8FailsFast(t *testing.T) {
	first := clientFrame(ws.OpText, false, []byte("bad \xff here"))
	if code, _ := closeCode(t, newParser(ws.OpText), first); code != ws.StatusInvalidFramePayloadData {
		t.Fatalf("close code %d", code)
	}
}

func TestParseClose(t *testing.T) {
	for _, c := range []struct {
		payload    []byte
		code       ws.StatusCode
		reason     string
		errCloseAs ws.StatusCode
	}{
		{nil, ws.StatusNormalClosure, "", 0},
		{ws.NewCloseFrameBody(ws.StatusGoingAway, "later"), ws.StatusGoingAway, "later", 0},
		{ws.NewCloseFrameBody(4000, "app"), 4000, "app", 0},
		{[]byte{3}, 0, "", ws.StatusProtocolError},
		{ws.NewCloseFrameBody(ws.StatusNoStatusRcvd, ""), 0, "", ws.StatusProtocolError},
		{ws.NewCloseFrameBody(999, ""), 0, "", ws.StatusProtocolError},
		{ws.NewCloseFrameBody(ws.StatusNormalClosure, "\xff"), 0, "", ws.StatusInvalidFramePayloadData},
	} {
		code, reason, err := ParseClose(c.payload)
		if c.errCloseAs != 0 {
			if got, _ := CloseFor(err); err == nil || got != c.errCloseAs {
				t.Errorf("%x: error %v closes with %d, want %d", c.payload, err, got, c.errCloseAs)
			}
			continue
		}
		if err != nil || code != c.code || reason != c.reason {
			t.Errorf("%x: %d %q %v, want %d %q", c.payload, code, reason, err, c.code, c.reason)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20} {
		var b [14]byte
		l := putHeader(b[:], ws.OpBinary, n)
		if hs := headerSize(b[0], b[1]); hs != l {
			t.Fatalf("length %d: header size %d, wrote %d", n, hs, l)
		}
		h, err := decodeHeader(b[:l])
		if err != nil || h.Length != int64(n) || !h.Fin || h.OpCode != ws.OpBinary || h.Masked {
			t.Fatalf("length %d: decoded %+v %v", n, h, err)
		}
		var w bytes.Buffer
		_ = ws.WriteHeader(&w, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(n)})
		if !bytes.Equal(w.Bytes(), b[:l]) {
			t.Fatalf("length %d: %x, gobwas writes %x", n, b[:l], w.Bytes())
		}
	}
}

func TestCloseForUnknownErrorIsNormal(t *testing.T) {
	if code, _ := CloseFor(errors.New("connection reset")); code != ws.StatusNormalClosure {
		t.Fatalf("close code %d", code)
	}
}
