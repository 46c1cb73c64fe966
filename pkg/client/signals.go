package client

import (
	"context"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// signalBuffer is how many pushed signals may wait unread; beyond it new
// ones are dropped, as the server may drop them too (they are ephemeral),
// so a client that ignores signals never stalls its messages.
const signalBuffer = 1024

// Signals delivers pushed presence, typing, read receipt, unread and
// online count frames, apart from Events. It is closed when the
// connection ends.
func (c *Client) Signals() <-chan *pb.ServerFrame { return c.signals }

func isSignal(f *pb.ServerFrame) bool {
	switch f.Kind.(type) {
	case *pb.ServerFrame_Presence, *pb.ServerFrame_Typing, *pb.ServerFrame_Read, *pb.ServerFrame_Unread, *pb.ServerFrame_RoomOnline:
		return true
	}
	return false
}

func (c *Client) pushSignal(f *pb.ServerFrame) {
	select {
	case c.signals <- f:
	default:
	}
}

// Typing tells the room's other members that the user types (active) or
// stopped. Resend every 3 s while typing: receivers forget it after a few
// seconds.
func (c *Client) Typing(ctx context.Context, room string, active bool) error {
	_, err := c.Request(ctx, &pb.ClientFrame{Kind: &pb.ClientFrame_Typing{Typing: &pb.Typing{Room: room, Active: active}}})
	return err
}

// MarkRead moves the user's read cursor in room up to seq.
func (c *Client) MarkRead(ctx context.Context, room string, seq uint64) error {
	_, err := c.Request(ctx, &pb.ClientFrame{Kind: &pb.ClientFrame_MarkRead{MarkRead: &pb.MarkRead{Room: room, Seq: seq}}})
	return err
}

// Sync reads a page of the user's rooms with their state, after afterRoom
// ("" from the start); limit 0 means the server's default.
func (c *Client) Sync(ctx context.Context, afterRoom string, limit uint32) (*pb.RoomList, error) {
	r, err := c.Request(ctx, &pb.ClientFrame{Kind: &pb.ClientFrame_Sync{Sync: &pb.Sync{AfterRoom: afterRoom, Limit: limit}}})
	if err != nil {
		return nil, err
	}
	return r.GetRooms(), nil
}
