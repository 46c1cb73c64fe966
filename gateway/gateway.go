// Package gateway is Parley's client edge, assembled from one package per
// job (under internal/): transport (WebSocket upgrades and frames, TLS),
// session (the client protocol of each connection), fanout (room hubs:
// local delivery of messages and signals, gap fill, catch-up), follow
// (local users, rate limits, presence following), outbox (the one send
// path into the processors) and httpapi (the REST API). It builds them,
// hands each the narrow interfaces it needs, and serves health, readiness
// and metrics. None of them knows the Gateway.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/gateway/internal/fanout"
	"github.com/parley-chat/parley/gateway/internal/follow"
	"github.com/parley-chat/parley/gateway/internal/httpapi"
	"github.com/parley-chat/parley/gateway/internal/outbox"
	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/gateway/internal/ratelimit"
	"github.com/parley-chat/parley/gateway/internal/session"
	"github.com/parley-chat/parley/gateway/internal/transport"
	"github.com/parley-chat/parley/gateway/web"
	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/ops"
	"github.com/parley-chat/parley/internal/roomlog"
	"github.com/parley-chat/parley/internal/sequencer"
	"github.com/parley-chat/parley/internal/services/accounts"
	"github.com/parley-chat/parley/pkg/protocol"
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

// SignalConfig tunes the ephemeral signals: presence, typing, read
// receipts and online counts.
type SignalConfig struct {
	// SmallRoom is the most members a room may have for its members to
	// follow each other's presence and see read receipts; larger rooms
	// get an online count instead (default 100).
	SmallRoom int
	// OnlineInterval is how often gateways exchange large rooms' online
	// counts (default 10s).
	OnlineInterval time.Duration
	// TypingRate and TypingBurst limit a user's typing frames (default 1
	// per second, bursts of 5); clients resend every 3 s while typing.
	TypingRate  float64
	TypingBurst int
}

// RateLimits are per-user token buckets. Negative rates disable a limit.
type RateLimits = ratelimit.Config

// TLSConfig makes the gateway's listener serve TLS only (https://, wss://).
type TLSConfig = transport.TLSConfig

// Transports: how client connections are served.
const (
	TransportEpoll     = transport.Epoll
	TransportGoroutine = transport.Goroutine
	DefaultTransport   = transport.DefaultTransport
)

// ReasonRevoked is the close reason of connections whose login session was
// revoked (close code 1008).
const ReasonRevoked = session.ReasonRevoked

// Listen opens the gateway's TCP listener. With reusePort, several gateway
// processes can listen on one port (SO_REUSEPORT) and the kernel spreads
// new connections among them.
func Listen(addr string, reusePort bool) (net.Listener, error) {
	return transport.Listen(addr, reusePort)
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
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	return c
}

// Gateway serves clients.
type Gateway struct {
	cfg         Config
	httpSeconds prometheus.Histogram
	// metrics serves /metrics on the gateway's listener, made once.
	metrics     http.Handler
	metricsOnce sync.Once
	mounts      []func(handle func(pattern string, h http.Handler)) // Mount's
	nc          *nats.Conn
	js          jetstream.JetStream
	rooms       Store
	log         *zap.Logger

	verifier  *verifier
	outbox    *outbox.Outbox
	hubs      *fanout.Hubs
	users     *follow.Users
	sessions  *session.Sessions
	api       *httpapi.API
	upgrader  *transport.Upgrader
	transport *transport.Transport // made by Start, run by Serve
	stop      context.CancelFunc   // ends the hubs' online counts
	running   sync.WaitGroup
}

// Store is what a gateway keeps in the store: rooms and members, and read
// cursors.
type Store interface {
	store.RoomStore
	store.ReadStore
	// Relations lists a user's friends, whose presence the user follows.
	Relations(ctx context.Context, user string, l store.RelationList, afterUser string, limit int) ([]store.Listed, error)
}

// New builds a gateway; Start connects it to the bus.
func New(nc *nats.Conn, js jetstream.JetStream, rooms Store, signer *auth.Signer, log *zap.Logger, cfg Config) *Gateway {
	cfg = cfg.withDefaults()
	log = log.With(zap.String("gateway", cfg.ID))
	g := &Gateway{cfg: cfg, nc: nc, js: js, rooms: rooms, log: log, verifier: &verifier{signer: signer},
		httpSeconds: ops.Latency("gateway_http_request_seconds", "Time to answer an HTTP request of the API, health or web client (WebSocket upgrades apart).")}
	roomLog := roomlog.Reader{NC: nc}
	g.outbox = outbox.New(nc, cfg.Sends)
	g.hubs = fanout.New(nc, roomLog, rooms, log, fanout.Config{
		GatewayID: cfg.ID, SmallRoom: cfg.Signals.SmallRoom, OnlineInterval: cfg.Signals.OnlineInterval, RequestTimeout: cfg.RequestTimeout,
	})
	g.users = follow.New(nc, rooms, g.hubs, log, follow.Config{
		GatewayID: cfg.ID, RequestTimeout: cfg.RequestTimeout, TypingRate: cfg.Signals.TypingRate, TypingBurst: cfg.Signals.TypingBurst,
	})
	g.sessions = session.New(session.Deps{
		Hubs: g.hubs, Users: g.users, Sends: g.outbox, Verifier: g.verifier, Store: rooms, RoomLog: roomLog,
		Signals: push.Publisher{NC: nc, Log: log},
	}, log, session.Config{
		GatewayID: cfg.ID, MaxBodySize: cfg.MaxBodySize, AuthTimeout: cfg.AuthTimeout, RequestTimeout: cfg.RequestTimeout, Limits: cfg.Limits,
	})
	g.api = httpapi.New(httpapi.Deps{
		Store: rooms, Accounts: accounts.NewClient(nc), Users: g.users, Sends: g.outbox, Verifier: g.verifier, Issuer: signer,
	}, log, httpapi.Config{DevTokens: cfg.DevTokens, RequestTimeout: cfg.RequestTimeout, Limits: cfg.Limits})
	g.upgrader = transport.NewUpgrader(transport.Config{
		Transport: cfg.Transport, TLS: cfg.TLS, Pollers: cfg.Pollers, MaxFrameSize: cfg.MaxFrameSize,
		SendQueue: cfg.SendQueue, Heartbeat: cfg.Heartbeat, IdleTimeout: cfg.IdleTimeout, WriteTimeout: cfg.WriteTimeout,
	}, func(c transport.Conn, codec protocol.Codec) transport.FrameHandler {
		return g.sessions.Open(c, codec)
	}, log)
	return g
}

// Start prepares the transport, the hubs, the local users and the outbox
// that hands sends to the processors.
func (g *Gateway) Start() error {
	var err error
	if g.transport, err = transport.New(g.upgrader, g.Handler()); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if err := g.outbox.Start(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.hubs.Start()
	if err := g.users.Start(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	g.stop = stop
	g.running.Go(func() { g.hubs.Run(ctx) })
	return nil
}

// Handler serves the WebSocket endpoint (/ws), health checks, the API and
// the web client (every other GET, with its Content-Security-Policy).
func (g *Gateway) Handler() http.Handler {
	mux := httpapi.NewRouter(g.api.Fail)
	mux.Latency = g.httpSeconds
	mux.Handle("GET /ws", g.upgrader)
	mux.HandleFunc("GET /healthz", g.healthz)
	mux.HandleFunc("GET /readyz", g.readyz)
	mux.HandleFunc("GET /metrics", g.serveMetrics)
	g.api.Routes(mux)
	for _, routes := range g.mounts {
		routes(mux.Handle)
	}
	mux.Handle("GET /", web.Handler())
	return mux
}

// Mount adds another component's routes (media uploads) to the gateway's
// HTTP API; call it before Start.
func (g *Gateway) Mount(routes func(handle func(pattern string, h http.Handler))) {
	g.mounts = append(g.mounts, routes)
}

// Authenticate returns the user of a request's bearer token (valid, of a
// live session), for the routes other components mount.
func (g *Gateway) Authenticate(r *http.Request) (string, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", fmt.Errorf("%w: missing bearer token", auth.ErrInvalidToken)
	}
	c, err := g.verifier.Verify(token)
	return c.User, err
}

// Serve accepts clients on ln, after Start, until Drain: over TLS only
// when Config.TLS is set.
func (g *Gateway) Serve(ln net.Listener) error {
	if g.transport == nil {
		return errors.New("gateway: Serve before Start")
	}
	return g.transport.Serve(ln)
}

// Drain stops accepting clients, then closes their connections with 1001
// spread evenly over Config.DrainTime, so they reconnect elsewhere without
// arriving all at once. It returns when every connection has ended, or
// ctx has, and the transport is released.
func (g *Gateway) Drain(ctx context.Context) {
	if g.transport == nil {
		return
	}
	_ = g.transport.Shutdown(ctx)
	all := g.sessions.All()
	start := time.Now()
	for i := 0; i < len(all); {
		due := len(all) // the i-th connection closes at i/len of DrainTime
		if g.cfg.DrainTime > 0 && ctx.Err() == nil {
			due = min(due, int(int64(len(all))*int64(time.Since(start))/int64(g.cfg.DrainTime))+1)
		}
		for ; i < due; i++ {
			all[i].Close(protocol.CloseGoingAway, "gateway draining, reconnect")
		}
		if i < len(all) {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	for g.sessions.Count() > 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	g.transport.Close()
}

// Shutdown closes every connection with 1001 so clients reconnect
// elsewhere and resume, then fails the sends still waiting with
// UNAVAILABLE (their clients resend them with the same client_msg_id).
func (g *Gateway) Shutdown() {
	for _, s := range g.sessions.All() {
		s.Close(protocol.CloseGoingAway, "gateway shutting down, reconnect")
	}
	g.outbox.Close()
	if g.stop != nil {
		g.stop()
		g.running.Wait()
	}
	g.users.Close()
	g.hubs.Stop()
}

// UseRevocations makes the gateway refuse the access tokens of revoked
// sessions. Call it before Start; pair it with CloseLogin so connections
// already open end too.
func (g *Gateway) UseRevocations(r Revocations) { g.verifier.revoked = r }

// CloseLogin closes every connection authenticated with a token of the
// login session login. The revocation must already be visible to
// UseRevocations' Revocations.
func (g *Gateway) CloseLogin(login string) { g.sessions.CloseLogin(login) }

// Connections is the number of open client connections.
func (g *Gateway) Connections() int64 { return int64(g.sessions.Count()) }

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

var (
	descConnections = ops.Desc("gateway_connections", "Open client connections.")
	descRooms       = ops.Desc("gateway_rooms", "Rooms with local subscribers (hubs, one NATS subscription each).")
	descDeliveries  = ops.Desc("gateway_deliveries_total", "Message events queued to connections.")
	descPending     = ops.Desc("gateway_sends_pending", "Sends waiting for a processor's answer.")
	descPerConn     = ops.Desc("gateway_bytes_per_connection", "Go heap and stacks in use divided by open connections (the process's fixed share included); only while connections are open.")
	descClosed      = ops.Desc("gateway_connections_closed_total", "WebSocket connections closed, by the close code that ended each (sent or received first; other: any other code).", "code")
	descSlow        = ops.Desc("gateway_slow_consumer_closes_total", "Connections closed (1008) for not reading fast enough: a full send queue or a stalled write.")
	descPresence    = ops.Desc("gateway_presence_transitions_total", "Users whose first connection to this gateway opened (to=online) or whose last one closed (to=offline).", "to")
	descResends     = ops.Desc("gateway_send_resends_total", "Sends sent to the processors again, unanswered within the attempt timeout or answered by no processor (a partition changing hands): this path's redeliveries.")
	descBytes       = ops.Desc("gateway_websocket_bytes_total", "Bytes read from (direction=in) and written to (direction=out) WebSocket connections, frame headers included.", "direction")
)

// Describe implements prometheus.Collector.
func (g *Gateway) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descRooms, descDeliveries, descPending, descPerConn, descClosed, descSlow, descPresence, descBytes, descResends} {
		ch <- d
	}
	g.sessions.Describe(ch)
	g.hubs.DeliveryLatency().Describe(ch)
	g.httpSeconds.Describe(ch)
}

// Collect implements prometheus.Collector: the gateway's figures, its
// sessions' counters and its latency histograms.
func (g *Gateway) Collect(ch chan<- prometheus.Metric) {
	conns := g.sessions.Count()
	ops.Level(ch, descConnections, float64(conns))
	ops.Level(ch, descRooms, float64(g.hubs.Count()))
	ops.Count(ch, descDeliveries, uint64(g.hubs.Deliveries()))
	ops.Level(ch, descPending, float64(g.outbox.Pending()))
	ops.Count(ch, descResends, g.outbox.Resends())
	if conns > 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		ops.Level(ch, descPerConn, float64(ms.HeapInuse+ms.StackInuse)/float64(conns))
	}
	g.upgrader.Closes.Each(func(code string, n uint64) { ops.Count(ch, descClosed, n, code) })
	ops.Count(ch, descSlow, g.upgrader.Closes.SlowConsumers())
	ops.Count(ch, descBytes, g.upgrader.Traffic.In.Load(), "in")
	ops.Count(ch, descBytes, g.upgrader.Traffic.Out.Load(), "out")
	online, offline := g.users.Transitions()
	ops.Count(ch, descPresence, online, "online")
	ops.Count(ch, descPresence, offline, "offline")
	g.sessions.Collect(ch)
	g.hubs.DeliveryLatency().Collect(ch)
	g.httpSeconds.Collect(ch)
}

// serveMetrics serves the process's and the gateway's metrics.
func (g *Gateway) serveMetrics(w http.ResponseWriter, r *http.Request) {
	g.metricsOnce.Do(func() {
		reg := ops.NewRegistry()
		reg.MustRegister(g)
		g.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	})
	g.metrics.ServeHTTP(w, r)
}
