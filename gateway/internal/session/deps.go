package session

import (
	"context"
	"time"

	"github.com/parley-chat/parley/gateway/internal/fanout"
	"github.com/parley-chat/parley/gateway/internal/follow"
	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/gateway/internal/ratelimit"
	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/roomlog"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// Config tunes sessions; zero fields take the defaults.
type Config struct {
	GatewayID      string           // prefix of session ids
	MaxBodySize    int              // largest message body (default protocol.DefaultMaxBodySize)
	AuthTimeout    time.Duration    // close if not authenticated by then (default 10s)
	RequestTimeout time.Duration    // bus and store calls of one request (default 10s)
	Limits         ratelimit.Config // per-user buckets
}

// Hubs are the rooms' local fan-out (fanout.Hubs).
type Hubs interface {
	Acquire(ctx context.Context, room string) (*fanout.Hub, error)
	Release(h *fanout.Hub)
	// SmallRoom tells whether room's members see each other's receipts.
	SmallRoom(ctx context.Context, room string) (bool, error)
}

// Users are the gateway's local users (follow.Users).
type Users interface {
	Acquire(user string) *follow.User
	Join(s push.Receiver, lu *follow.User)
	Leave(s push.Receiver, lu *follow.User)
	AllowTyping(user string) bool
	PublishUserEvent(ctx context.Context, user string, from push.Receiver, f *pb.ServerFrame)
}

// Sender hands a message to the processor owning its room (outbox.Outbox);
// done gets its answer, once.
type Sender interface {
	Send(in *pb.InboundMessage, done func(*pb.SendResult))
}

// Verifier checks an access token: signature, expiry, not revoked.
type Verifier interface {
	Verify(token string) (auth.Claims, error)
}

// RoomLog reads rooms' stored messages (roomlog.Reader).
type RoomLog interface {
	Head(ctx context.Context, room string) (uint64, error)
	Range(ctx context.Context, room string, from, to uint64) ([]roomlog.Entry, error)
	Message(ctx context.Context, room string, seq uint64) (*pb.Message, error)
}

// Store is what sessions read and write in the store.
type Store interface {
	Member(ctx context.Context, room, user string) (store.Member, error)
	Room(ctx context.Context, id string) (store.Room, error)
	UserRooms(ctx context.Context, user, afterRoom string, limit int) ([]string, error)
	ReadSeq(ctx context.Context, user, room string) (uint64, error)
	MarkRead(ctx context.Context, user, room string, seq uint64) (uint64, error)
}
