// Package gateway is Parley's client edge: WebSocket connections (the
// parley.v1.json and parley.v1.proto subprotocols), the HTTP API, and local
// fan-out of room messages to the connections subscribed on this gateway.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/gateway/web"
	"github.com/parley-chat/parley/pkg/auth"
	"github.com/parley-chat/parley/pkg/bus"
	"github.com/parley-chat/parley/pkg/ops"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/roomlog"
	"github.com/parley-chat/parley/pkg/sequencer"
	"github.com/parley-chat/parley/pkg/services/accounts"
	"github.com/parley-chat/parley/pkg/store"
)

// Config tunes a gateway.
type Config struct {
	ID             string           // unique per gateway process; random by default
	Sends          sequencer.Config // handing sends to the processors
	MaxBodySize    int              // largest message body (default 64 KiB)
	MaxFrameSize   int64            // largest WebSocket message (default body + 16 KiB)
	SendQueue      int              // frames queued per connection before it counts as slow
	Heartbeat      time.Duration    // server ping interval
	IdleTimeout    time.Duration    // close after this long without any frame
	AuthTimeout    time.Duration    // close if not authenticated by then
	WriteTimeout   time.Duration
	RequestTimeout time.Duration // bus and store calls of one request
	DevTokens      bool          // serve POST /api/v1/dev/tokens (never in production)
	Signals        SignalConfig  // presence, typing, read receipts, online counts
	Limits         RateLimits
	Transport      string        // TransportEpoll (default on Linux without TLS) or TransportGoroutine
	TLS            TLSConfig     // serve TLS only when set
	Pollers        int           // epoll loops of the epoll transport (default: one per CPU)
	DrainTime      time.Duration // Drain spreads closing connections over this long
}

func (c Config) withDefaults() Config {
	if c.ID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.ID = "gw" + hex.EncodeToString(b)
	}
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = protocol.DefaultMaxBodySize
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = int64(c.MaxBodySize) + 16<<10
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 4096
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 25 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	c.Signals = c.Signals.withDefaults()
	c.Limits = c.Limits.withDefaults()
	if c.Transport == "" {
		c.Transport = DefaultTransport
		if c.TLS.enabled() {
			c.Transport = TransportGoroutine // the only one carrying TLS
		}
	}
	return c
}

// Gateway serves clients.
type Gateway struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	rooms    Store
	signer   *auth.Signer
	accounts *accounts.Client
	log      *zap.Logger
	roomLog  roomlog.Reader

	sends       *sequencer.Client // made by Start
	hubs        *hubs
	subs        *subscriptions // made by Start
	users       *users
	revoked     Revocations // nil: no session is ever revoked
	sessions    sessionTable
	nextSession atomic.Uint64
	metrics     metrics
	transport   server      // made by Start, run by Serve
	tls         *tls.Config // made by Start with Config.TLS; nil: plain
}

type metrics struct {
	connections atomic.Int64
	deliveries  atomic.Int64
}

// New creates a gateway; Start subscribes it to the bus.
func New(nc *nats.Conn, js jetstream.JetStream, rooms Store, signer *auth.Signer, log *zap.Logger, cfg Config) *Gateway {
	cfg = cfg.withDefaults()
	g := &Gateway{
		cfg:      cfg,
		nc:       nc,
		js:       js,
		rooms:    rooms,
		signer:   signer,
		accounts: accounts.NewClient(nc),
		log:      log.With(zap.String("gateway", cfg.ID)),
		roomLog:  roomlog.Reader{NC: nc},
	}
	g.hubs = &hubs{g: g, m: make(map[string]*hub)}
	g.users = newUsers(g)
	return g
}

// Start prepares the transport and the client that hands sends to the
// processors.
func (g *Gateway) Start() error {
	g.subs = newSubscriptions(g.nc)
	var err error
	if g.transport, err = g.newServer(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if g.cfg.TLS.enabled() {
		if g.tls, err = g.newTLS(); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		g.log.Info("serving TLS only (https, wss), with WebSockets on the goroutine transport: the epoll transport cannot carry TLS")
	}
	if g.sends, err = sequencer.NewClient(g.nc, g.cfg.Sends); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return g.users.start()
}

// Handler serves the WebSocket endpoint (/ws), health checks, the API and
// the web client (every other GET, with its Content-Security-Policy).
func (g *Gateway) Handler() http.Handler {
	mux := newRouter(g.apiFail)
	mux.HandleFunc("GET /ws", g.serveWS)
	mux.HandleFunc("GET /healthz", g.healthz)
	mux.HandleFunc("GET /readyz", g.readyz)
	mux.HandleFunc("GET /metrics", g.serveMetrics)
	g.routeAPI(mux)
	mux.Handle("GET /", web.Handler())
	return mux
}

// Shutdown closes every connection with 1001 so clients reconnect
// elsewhere and resume, then fails the sends still waiting with
// UNAVAILABLE (their clients resend them with the same client_msg_id).
func (g *Gateway) Shutdown() {
	for _, s := range g.sessions.all() {
		s.conn.Close(protocol.CloseGoingAway, "gateway shutting down, reconnect")
	}
	if g.sends != nil {
		g.sends.Close()
	}
	g.users.close()
	if g.subs != nil {
		g.subs.stop()
	}
}

// Connections is the number of open client connections.
func (g *Gateway) Connections() int64 { return g.metrics.connections.Load() }

func (g *Gateway) healthz(w http.ResponseWriter, _ *http.Request) {
	if !g.nc.IsConnected() {
		http.Error(w, "nats disconnected", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// readyz checks the whole path a message takes: NATS, JetStream and the store.
func (g *Gateway) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

// Ready checks what a message's path needs from here: JetStream and the
// store answer.
func (g *Gateway) Ready(ctx context.Context) error {
	if _, err := g.js.Stream(ctx, bus.StreamMsg); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if _, err := g.rooms.Room(ctx, "readyz-probe"); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// serveMetrics writes the process's and the gateway's metrics.
func (g *Gateway) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	ops.WriteRuntime(w)
	g.WriteMetrics(w)
}

// WriteMetrics writes the gateway's metrics in the Prometheus text format.
func (g *Gateway) WriteMetrics(w io.Writer) {
	conns := g.metrics.connections.Load()
	ops.Gauge(w, "parley_gateway_connections", "Open client connections.", uint64(conns))
	ops.Gauge(w, "parley_gateway_rooms", "Rooms with local subscribers.", uint64(g.hubs.count()))
	ops.Counter(w, "parley_gateway_deliveries_total", "Message events queued to connections.", uint64(g.metrics.deliveries.Load()))
	ops.Gauge(w, "parley_gateway_sends_pending", "Sends waiting for a processor's answer.", uint64(g.sends.Pending()))
	if conns > 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		ops.Gauge(w, "parley_gateway_bytes_per_connection", "Go heap and stacks in use divided by open connections (the process's fixed share included).", (ms.HeapInuse+ms.StackInuse)/uint64(conns))
	}
}
