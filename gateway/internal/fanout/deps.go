package fanout

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/internal/roomlog"
	"github.com/parley-chat/parley/pkg/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes the hubs; zero fields take the defaults.
type Config struct {
	GatewayID string // names this gateway in online-count reports
	// SmallRoom is the most members a room may have for its members to
	// see each other's receipts; larger rooms get an online count
	// instead (default 100).
	SmallRoom int
	// OnlineInterval is how often gateways exchange large rooms' online
	// counts (default 10s).
	OnlineInterval time.Duration
	// RequestTimeout bounds filling a live gap from the room log (default 10s).
	RequestTimeout time.Duration
}

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.SmallRoom <= 0 {
		c.SmallRoom = 100
	}
	if c.OnlineInterval <= 0 {
		c.OnlineInterval = 10 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	return c
}

// RoomLog reads rooms' stored messages (roomlog.Reader).
type RoomLog interface {
	// Head is the room's last seq, 0 if it has none.
	Head(ctx context.Context, room string) (uint64, error)
	// Range reads seqs from..to, in order; it may return fewer at the
	// end when they are not stored yet.
	Range(ctx context.Context, room string, from, to uint64) ([]roomlog.Entry, error)
}

// Members lists a room's members (store.RoomStore).
type Members interface {
	Members(ctx context.Context, room, afterUser string, limit int) ([]store.Member, error)
}

// deps are what every hub works with, shared by the hubs.
type deps struct {
	cfg        Config
	roomLog    RoomLog
	members    Members
	pub        push.Publisher
	log        *zap.Logger
	subs       *subscriptions // made by Hubs.Start
	deliveries atomic.Int64   // message events queued to members
	// storedToLive times each live message from its append to CHAT_MSG
	// to its hub here.
	storedToLive prometheus.Histogram
}

// SmallRoomMembers reads a room's members if it has at most SmallRoom of
// them; small is false for larger rooms, whose members are not read.
func (d *deps) SmallRoomMembers(ctx context.Context, room string) (members []string, small bool, err error) {
	ms, err := d.members.Members(ctx, room, "", d.cfg.SmallRoom+1)
	if err != nil || len(ms) > d.cfg.SmallRoom {
		return nil, false, err
	}
	members = make([]string, len(ms))
	for i, m := range ms {
		members[i] = m.User
	}
	return members, true, nil
}
