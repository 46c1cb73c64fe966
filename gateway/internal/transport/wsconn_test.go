package transport

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/gateway/reactor"
	"github.com/parley-chat/parley/internal/tlsreload/tlstest"
)

type discardFrames struct{}

func (discardFrames) Handle([]byte) {}
func (discardFrames) Closed()       {}

// A client that stops reading in the middle of a frame is closed as a slow
// consumer once the write has stalled for WriteTimeout: reading again, it
// gets the rest of that frame, then the close frame 1008, and none of the
// frames queued behind.
func TestStalledWriteEndsWithCloseFrame(t *testing.T) {
	server, client := net.Pipe() // unbuffered: a write waits for the reader
	t.Cleanup(func() { client.Close() })
	cfg := Config{WriteTimeout: 100 * time.Millisecond, Heartbeat: time.Hour, IdleTimeout: time.Hour}
	c := &wsConn{
		conn:     server,
		op:       ws.OpBinary,
		out:      make(chan outFrame, 16),
		closing:  make(chan struct{}),
		readDone: make(chan struct{}),
		cfg:      &cfg,
		log:      zaptest.NewLogger(t),
	}
	go c.writeLoop()
	go c.readLoop(discardFrames{})
	first := bytes.Repeat([]byte{'a'}, 1000)
	c.Send(first)
	c.Send(bytes.Repeat([]byte{'b'}, 1000))

	head := make([]byte, 100) // the header and part of the first payload
	if _, err := io.ReadFull(client, head); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * cfg.WriteTimeout) // the writer gives up meanwhile

	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	rd := io.MultiReader(bytes.NewReader(head), client)
	f, err := ws.ReadFrame(rd)
	if err != nil || f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, first) {
		t.Fatalf("first frame: %v %v, %d bytes", err, f.Header.OpCode, len(f.Payload))
	}
	f, err = ws.ReadFrame(rd)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("after the cut frame: %v %v, want the close frame", err, f.Header.OpCode)
	}
	if code, reason := ws.ParseCloseFrameData(f.Payload); code != ws.StatusPolicyViolation || reason != reactor.ReasonSlowConsumer {
		t.Fatalf("close %d %q, want %d %q", code, reason, ws.StatusPolicyViolation, reactor.ReasonSlowConsumer)
	}
}

// A batch written to a TLS connection (as one Write of a copy) arrives
// whole and in order.
func TestBatchOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.WriteServerCert(t, certFile, keyFile)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	tlsServer := tls.Server(server, &tls.Config{Certificates: []tls.Certificate{cert}})
	tlsClient := tls.Client(client, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})

	payloads := [][]byte{[]byte("first"), bytes.Repeat([]byte{'b'}, 70_000), {}, []byte("last")}
	written := make(chan error, 1)
	go func() {
		var out batch
		for _, p := range payloads {
			out.add(outFrame{ws.OpBinary, p})
		}
		written <- out.write(tlsServer, 5*time.Second)
	}()
	_ = tlsClient.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, want := range payloads {
		f, err := ws.ReadFrame(tlsClient)
		if err != nil || f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, want) {
			t.Fatalf("frame %d: %v %v, %d bytes; want %d", i, err, f.Header.OpCode, len(f.Payload), len(want))
		}
	}
	if err := <-written; err != nil {
		t.Fatalf("write: %v", err)
	}
}
