package gateway

import (
	"time"

	"github.com/parley-chat/parley/gateway/internal/fanout"
	"github.com/parley-chat/parley/gateway/internal/follow"
	"github.com/parley-chat/parley/gateway/internal/ratelimit"
	"github.com/parley-chat/parley/gateway/internal/transport"
	"github.com/parley-chat/parley/internal/config"
)

// DefaultDrainTime is how long Drain spreads closing connections over,
// unless configured.
const DefaultDrainTime = 10 * time.Second

// BindFlags registers the gateway's settings as flags of f, with the
// defaults its packages apply to zero values, so each default is written
// once. devTokens is --dev-tokens' default.
func (c *Config) BindFlags(f *config.Flags, devTokens bool) {
	tc := transport.Config{}.WithDefaults()
	lim := ratelimit.Config{}.WithDefaults()
	sig := fanout.Config{}.WithDefaults()
	typing := follow.Config{}.WithDefaults()
	f.Bool(&c.DevTokens, "dev-tokens", devTokens, "serve POST /api/v1/dev/tokens, which issues a token for any user (development only)")
	f.Duration(&c.Heartbeat, "ws-heartbeat", tc.Heartbeat, "WebSocket ping interval")
	f.Duration(&c.IdleTimeout, "ws-idle-timeout", tc.IdleTimeout, "close connections silent for this long")
	f.String(&c.Transport, "ws-transport", "", "WebSocket transport: epoll (Linux: no goroutine per idle connection) or goroutine (portable) (default: "+DefaultTransport+", goroutine with --tls-cert)")
	f.Int(&c.Pollers, "ws-pollers", 0, "epoll loops of the epoll transport (0: one per CPU)")
	f.Duration(&c.DrainTime, "drain-time", DefaultDrainTime, "on shutdown, close client connections (1001, reconnect) spread over this long")
	f.Float(&c.Limits.SendRate, "rate-send", lim.SendRate, "messages a user may send per second on one gateway (negative: unlimited)")
	f.Int(&c.Limits.SendBurst, "rate-send-burst", lim.SendBurst, "burst of --rate-send")
	f.Float(&c.Limits.RequestRate, "rate-requests", lim.RequestRate, "other requests a user may make per second on one gateway (negative: unlimited)")
	f.Int(&c.Limits.RequestBurst, "rate-requests-burst", lim.RequestBurst, "burst of --rate-requests")
	f.Int(&c.Signals.SmallRoom, "small-room", sig.SmallRoom, "rooms of at most this many members show members' presence and read receipts; larger ones an online count")
	f.Duration(&c.Signals.OnlineInterval, "online-interval", sig.OnlineInterval, "how often gateways exchange large rooms' online counts")
	f.Float(&c.Signals.TypingRate, "rate-typing", typing.TypingRate, "typing frames a user may send per second on one gateway")
	f.Int(&c.Signals.TypingBurst, "rate-typing-burst", typing.TypingBurst, "burst of --rate-typing")
}
