// Package client is a Go client of the Parley WebSocket protocol, used by
// the bench harness, the end-to-end tests and Go programs. Requests may be
// issued from many goroutines at once; each waits for its own answer.
package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// Options configure Dial.
type Options struct {
	// Subprotocol is protocol.SubprotocolProto (default) or SubprotocolJSON.
	Subprotocol string
	// Token, if set, authenticates the connection during Dial.
	Token string
	// LocalAddr binds the client's side of the TCP connection (for load
	// tests dialing from many loopback addresses).
	LocalAddr net.Addr
	// EventBuffer is how many pushed events may wait unread (default 65536).
	EventBuffer int
	// TLSConfig configures wss:// connections: RootCAs for a private CA,
	// for instance. Nil verifies the server against the system roots; a
	// config without ServerName gets the URL's host.
	TLSConfig *tls.Config
}

// ServerError is an Error frame answering a request.
type ServerError struct {
	Code    pb.ErrorCode
	Message string
}

func (e *ServerError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Client is one WebSocket connection to a Parley gateway.
type Client struct {
	conn   net.Conn
	codec  protocol.Codec
	op     ws.OpCode
	nextID atomic.Uint64
	events chan *pb.ServerFrame
	// signals gets presence, typing, receipt, unread and online count
	// frames (signals.go).
	signals chan *pb.ServerFrame

	wmu sync.Mutex // held across each write of whole frames

	mu      sync.Mutex
	pending map[uint64]chan *pb.ServerFrame
	done    chan struct{}
	err     error // why the connection ended
}

// Dial connects to a gateway's WebSocket URL: ws://host:port/ws, or
// wss://host:port/ws for a gateway serving TLS.
func Dial(ctx context.Context, url string, o Options) (*Client, error) {
	if o.Subprotocol == "" {
		o.Subprotocol = protocol.SubprotocolProto
	}
	codec := protocol.ForSubprotocol(o.Subprotocol)
	if codec == nil {
		return nil, fmt.Errorf("client: unknown subprotocol %q", o.Subprotocol)
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 65536
	}
	d := ws.Dialer{Protocols: []string{o.Subprotocol}, TLSConfig: o.TLSConfig}
	if o.LocalAddr != nil {
		nd := net.Dialer{LocalAddr: o.LocalAddr}
		d.NetDial = nd.DialContext
	}
	conn, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	if hs.Protocol != o.Subprotocol {
		conn.Close()
		return nil, fmt.Errorf("client: server chose subprotocol %q", hs.Protocol)
	}
	c := &Client{
		conn:    conn,
		codec:   codec,
		op:      ws.OpText,
		events:  make(chan *pb.ServerFrame, o.EventBuffer),
		signals: make(chan *pb.ServerFrame, signalBuffer),
		pending: make(map[uint64]chan *pb.ServerFrame),
		done:    make(chan struct{}),
	}
	if codec.Binary() {
		c.op = ws.OpBinary
	}
	var src io.Reader = conn
	if br != nil {
		src = io.MultiReader(br, conn)
	}
	go c.readLoop(src)
	if o.Token != "" {
		if _, err := c.Authenticate(ctx, o.Token); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Events delivers pushed frames (Message events, and Error frames with id 0
// answering undecodable input). It is closed when the connection ends.
func (c *Client) Events() <-chan *pb.ServerFrame { return c.events }

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: a wsutil.ClosedError carrying the
// server's close code, or a network error.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// CloseCode returns the close code the server sent, or 0.
func (c *Client) CloseCode() ws.StatusCode {
	var ce wsutil.ClosedError
	if errors.As(c.Err(), &ce) {
		return ce.Code
	}
	return 0
}

// write puts whole frames on the connection, one caller at a time.
func (c *Client) write(frames []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(frames)
	return err
}

// controlHandler answers the server's control frames (pong, close echo).
// The wsutil handler may write a frame in pieces, so they are gathered and
// written at once. A close frame with an invalid code or reason is
// answered here with 1002: wsutil's handler (gobwas/ws v1.5.0) answers it
// with a close frame it forgets to mask, which a server must refuse.
func (c *Client) controlHandler() wsutil.FrameHandlerFunc {
	var answer bytes.Buffer
	handle := wsutil.ControlFrameHandler(&answer, ws.StateClientSide)
	return func(h ws.Header, r io.Reader) error {
		if h.OpCode == ws.OpClose && h.Length > 0 {
			payload, err := io.ReadAll(r) // at most 125 bytes: the reader checked the header
			if err != nil {
				return err
			}
			if err := ws.CheckCloseFrameData(ws.ParseCloseFrameData(payload)); err != nil {
				_ = c.WriteFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusProtocolError, err.Error()))
				return err
			}
			r = bytes.NewReader(payload)
		}
		err := handle(h, r)
		if answer.Len() > 0 {
			err = cmp.Or(err, c.write(answer.Bytes()))
			answer.Reset()
		}
		return err
	}
}

func (c *Client) readLoop(src io.Reader) {
	rd := wsutil.NewClientSideReader(src)
	ctl := c.controlHandler()
	rd.OnIntermediate = ctl
	var err error
	for {
		var hdr ws.Header
		if hdr, err = rd.NextFrame(); err != nil {
			break
		}
		if hdr.OpCode.IsControl() {
			if err = ctl(hdr, rd); err != nil {
				break
			}
			continue
		}
		var data []byte
		if data, err = io.ReadAll(rd); err != nil {
			break
		}
		f := new(pb.ServerFrame)
		if err = c.codec.DecodeServer(data, f); err != nil {
			break
		}
		c.dispatch(f)
	}
	c.finish(err)
}

func (c *Client) dispatch(f *pb.ServerFrame) {
	if f.Id == 0 {
		if isSignal(f) {
			c.pushSignal(f)
		} else {
			c.events <- f
		}
		return
	}
	c.mu.Lock()
	ch := c.pending[f.Id]
	delete(c.pending, f.Id)
	c.mu.Unlock()
	if ch != nil {
		ch <- f
	}
}

func (c *Client) finish(err error) {
	c.mu.Lock()
	c.err = err
	c.pending = nil
	c.mu.Unlock()
	c.conn.Close()
	close(c.events)
	close(c.signals)
	close(c.done)
}

// WriteFrame writes one raw WebSocket data frame (for tests of bad input).
// Header and payload go out in one write, so frames sent from several
// goroutines never interleave.
func (c *Client) WriteFrame(op ws.OpCode, payload []byte) error {
	frame, err := ws.CompileFrame(ws.MaskFrame(ws.NewFrame(op, true, payload)))
	if err != nil {
		return err
	}
	return c.write(frame)
}

// Request sends a frame and waits for its answer. An Error answer is
// returned as *ServerError.
func (c *Client) Request(ctx context.Context, f *pb.ClientFrame) (*pb.ServerFrame, error) {
	f.Id = c.nextID.Add(1)
	ch := make(chan *pb.ServerFrame, 1)
	c.mu.Lock()
	if c.pending == nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("client: connection closed: %w", c.Err())
	}
	c.pending[f.Id] = ch
	c.mu.Unlock()
	data, err := c.codec.EncodeClient(f)
	if err == nil {
		err = c.WriteFrame(c.op, data)
	}
	if err != nil {
		c.forget(f.Id)
		return nil, err
	}
	select {
	case r := <-ch:
		if e, ok := r.Kind.(*pb.ServerFrame_Error); ok {
			return r, &ServerError{Code: e.Error.Code, Message: e.Error.Message}
		}
		return r, nil
	case <-c.done:
		return nil, fmt.Errorf("client: connection closed: %w", c.Err())
	case <-ctx.Done():
		c.forget(f.Id)
		return nil, ctx.Err()
	}
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// Authenticate binds the connection to the token's user.
func (c *Client) Authenticate(ctx context.Context, token string) (*pb.Authenticated, error) {
	r, err := c.Request(ctx, &pb.ClientFrame{Kind: &pb.ClientFrame_Auth{Auth: &pb.Authenticate{Token: token}}})
	if err != nil {
		return nil, err
	}
	return r.GetAuthenticated(), nil
}

// Send appends a text message to a room and waits until it is stored.
func (c *Client) Send(ctx context.Context, room, clientMsgID, text string) (*pb.SendAck, error) {
	return c.SendBody(ctx, room, clientMsgID, &pb.Body{Text: text})
}

// SendBody appends a message with any body.
func (c *Client) SendBody(ctx context.Context, room, clientMsgID string, body *pb.Body) (*pb.SendAck, error) {
	r, err := c.Request(ctx, &pb.ClientFrame{Kind: &pb.ClientFrame_Send{Send: &pb.SendMessage{Room: room, ClientMsgId: clientMsgID, Body: body}}})
	if err != nil {
		return nil, err
	}
	return r.GetAck(), nil
}

// Subscribe starts delivery of a room; with after set, resumes after it.
func (c *Client) Subscribe(ctx context.Context, room string, after *uint64) (*pb.Subscribed, error) {
	r, err := c.Request(ctx, &pb.ClientFrame{Kind: &pb.ClientFrame_Subscribe{Subscribe: &pb.Subscribe{Room: room, AfterSeq: after}}})
	if err != nil {
		return nil, err
	}
	return r.GetSubscribed(), nil
}

// Unsubscribe stops delivery of a room.
func (c *Client) Unsubscribe(ctx context.Context, room string) error {
	_, err := c.Request(ctx, &pb.ClientFrame{Kind: &pb.ClientFrame_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Room: room}}})
	return err
}

// History reads a page of a room's messages.
func (c *Client) History(ctx context.Context, q *pb.HistoryRequest) (*pb.HistoryPage, error) {
	r, err := c.Request(ctx, &pb.ClientFrame{Kind: &pb.ClientFrame_History{History: q}})
	if err != nil {
		return nil, err
	}
	return r.GetHistory(), nil
}

// Close sends a normal close frame and ends the connection.
func (c *Client) Close() error {
	_ = c.WriteFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	return c.conn.Close()
}

// Abort drops the TCP connection without a close handshake.
func (c *Client) Abort() error { return c.conn.Close() }
