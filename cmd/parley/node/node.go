// Package node assembles Parley's roles (gateway, processor, archiver) with
// their NATS connections, store and optional embedded nats-server into one
// running process. `parley dev` runs every role; `parley gateway` etc. one.
// Each role is a list of components (components.go), the same whichever
// roles share the process: each runs until Close, says whether it is ready
// and exports its metrics on the ops listener.
package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/archiver"
	"github.com/parley-chat/parley/gateway"
	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/natsauth"
	"github.com/parley-chat/parley/internal/natsembed"
	"github.com/parley-chat/parley/internal/ops"
	"github.com/parley-chat/parley/internal/presence"
	"github.com/parley-chat/parley/internal/services/accounts"
	"github.com/parley-chat/parley/pkg/store"
	"github.com/parley-chat/parley/processor"
	"github.com/parley-chat/parley/processor/notify"
)

// Roles selects what a node runs.
type Roles struct {
	Gateway, Processor, Archiver bool
}

// Config is a node's whole configuration.
type Config struct {
	Roles   Roles
	DataDir string // embedded NATS store, Pebble store and dev signing key

	// Embedded starts a nats-server in this process; else NATSURL is used.
	Embedded bool
	NATS     natsembed.Config
	NATSURL  string
	// NATSTLS secures the connections to NATSURL (not to an embedded
	// server).
	NATSTLS NATSTLS
	// NATSAuth are the credentials for NATSURL (the embedded server has
	// its own users).
	NATSAuth NATSAuth
	Streams  bus.StreamConfig

	// OpenStore opens the node's store (Pebble or ScyllaDB).
	OpenStore func(ctx context.Context) (store.Store, error)

	HTTPAddr  string // gateway listener, e.g. ":8080"
	ReusePort bool   // SO_REUSEPORT: several gateway processes share HTTPAddr
	DebugAddr string // "" or this process's own /metrics and /debug/pprof listener
	TokenKey  string // access token signing key; "" = generated under DataDir
	TokenTTL  time.Duration

	Gateway   gateway.Config
	Processor processor.Config
	Notify    notify.Config
	Archiver  archiver.Config
	// Presence sets the presence bucket; its replicas default to the
	// streams'.
	Presence presence.Config
	// Media is how uploads are stored and served (gateway and processor).
	Media MediaConfig
	// Accounts tunes the accounts service (archiver role); the node sets
	// its Signer and Revoked.
	Accounts accounts.Config
}

// NATSAuth are the credentials of a node's connections to an external
// NATS; none when User is "". The server gives the user its role's
// permissions (natsauth).
type NATSAuth struct {
	User, Password string
}

// NATSTLS is how a node's connections to an external NATS use TLS. Any
// file set turns TLS on; so does a tls:// URL.
type NATSTLS struct {
	CAFile string // PEM CA certificates to verify the servers; "" = the system's
	// CertFile and KeyFile are a client certificate (PEM), for servers
	// that require one (verify: true); set both or neither.
	CertFile, KeyFile string
}

// options are the nats.go options for t.
func (t NATSTLS) options() []nats.Option {
	var opts []nats.Option
	if t.CAFile != "" {
		opts = append(opts, nats.RootCAs(t.CAFile))
	}
	if t.CertFile != "" || t.KeyFile != "" {
		opts = append(opts, nats.ClientCert(t.CertFile, t.KeyFile))
	}
	return opts
}

// Node is a running Parley process.
type Node struct {
	cfg   Config
	log   *zap.Logger
	ns    *server.Server
	url   string       // the NATS servers
	conns []*nats.Conn // every connection, n.nc first
	nc    *nats.Conn
	// passwords of the embedded server's role users
	passwords map[natsauth.Role]string
	st        store.Store
	gw        *gateway.Gateway
	ln        net.Listener
	debugLn   net.Listener
	cancel    context.CancelFunc
	// draining is set when Close starts: /readyz answers 503 from then on.
	draining atomic.Bool
	ops      *http.Server // /healthz, /readyz, /metrics on DebugAddr
	// partitions is the deployment's partition count, read from CHAT_MSG.
	partitions int
	wg         sync.WaitGroup
	closed     sync.Once

	// components: what the roles run, in start order.
	components []component

	// Accounts: the revocations a gateway mirrors, and what the accounts
	// service and gateways share.
	revocations *accounts.Revocations
	signer      *auth.Signer
	tokenKey    []byte
	revokedKV   jetstream.KeyValue // the archiver's handle
	gwRevokedKV jetstream.KeyValue // the gateway's

	Processor *processor.Processor
	Notifier  *notify.Notifier
	Archiver  *archiver.Archiver
}

// Start brings up the configured roles; Close stops them.
func Start(ctx context.Context, cfg Config, log *zap.Logger) (_ *Node, err error) {
	n := &Node{cfg: cfg, log: log}
	// On failure, release what was started; the returned node is nil, so
	// the deferred close must hold its own reference.
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, err
		}
	}
	url := cfg.NATSURL
	if cfg.Embedded {
		ec := cfg.NATS
		ec.Users, ec.NoAuthUser, n.passwords = embeddedUsers()
		if n.ns, err = natsembed.Start(ec); err != nil {
			return nil, err
		}
		url = n.ns.ClientURL()
		log.Info("embedded nats-server started", zap.String("url", url), zap.String("store", cfg.NATS.StoreDir))
	}
	n.url = url
	// Each role has its own connection, as its own NATS user where the
	// server has users (natsauth): the processor and the archiver, so
	// that their traffic never queues behind the gateway's fan-out in one
	// connection's reader and writer; all of them, so that each has only
	// its own permissions.
	var proc, arch, gw conn
	if cfg.Roles.Processor {
		if proc, err = n.connect(natsauth.Processor); err != nil {
			return nil, err
		}
	}
	if cfg.Roles.Archiver {
		if arch, err = n.connect(natsauth.Archiver); err != nil {
			return nil, err
		}
	}
	if cfg.Roles.Gateway {
		if gw, err = n.connect(natsauth.Gateway); err != nil {
			return nil, err
		}
	}
	n.nc = n.conns[0]
	js := cmp.Or(proc, arch, gw).js
	if err := waitForJetStream(ctx, js); err != nil {
		return nil, err
	}
	// The processor and the archiver create the streams and buckets; a
	// gateway, which may not, waits for them.
	presenceCfg := presence.Config{TTL: cfg.Presence.TTL, Replicas: cmp.Or(cfg.Presence.Replicas, cfg.Streams.Replicas)}
	if admin := cmp.Or(proc, arch); admin.js != nil {
		if n.partitions, err = bus.EnsureStreams(ctx, admin.js, cfg.Streams); err != nil {
			return nil, err
		}
		if err := presence.Ensure(ctx, admin.js, presenceCfg); err != nil {
			return nil, err
		}
		if err := n.ensureMedia(ctx, admin); err != nil {
			return nil, err
		}
	} else {
		if n.partitions, err = bus.AwaitStreams(ctx, gw.js, cfg.Streams, log); err != nil {
			return nil, err
		}
		if _, err := bus.AwaitKeyValue(ctx, gw.js, presence.Bucket, log); err != nil {
			return nil, err
		}
	}
	if n.st, err = cfg.OpenStore(ctx); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if cfg.Roles.Archiver || cfg.Roles.Gateway {
		// The bucket of revoked sessions is the archiver's (its accounts
		// service revokes); a node that runs a gateway with a processor
		// but no archiver makes it, with the gateway's token TTL.
		if err := n.startAuth(ctx, cmp.Or(arch, proc).js, gw.js); err != nil {
			return nil, err
		}
	}
	// Each role is a list of components, started in this order.
	for _, role := range []struct {
		on    bool
		start func() ([]component, error)
	}{
		{cfg.Roles.Archiver, func() ([]component, error) { return n.archiverRole(arch) }},
		{cfg.Roles.Processor, func() ([]component, error) { return n.processorRole(ctx, runCtx, proc) }},
		{cfg.Roles.Gateway, func() ([]component, error) { return n.gatewayRole(ctx, gw) }},
	} {
		if !role.on {
			continue
		}
		cs, err := role.start()
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			n.components = append(n.components, c)
			if c.run != nil {
				n.run(c.name, func() error { return c.run(runCtx) })
			}
		}
	}
	if cfg.DebugAddr != "" {
		if err := n.startOps(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// startOps serves /healthz, /readyz, /metrics and /debug/pprof/ on
// DebugAddr for whatever roles the node runs. Ready means NATS is
// connected, the node is not draining, and every role says it is ready.
func (n *Node) startOps() error {
	live := []ops.Check{n.natsConnected}
	ready := []ops.Check{n.notDraining, n.natsConnected}
	reg := ops.NewRegistry()
	for _, c := range n.components {
		if c.ready != nil {
			ready = append(ready, c.ready)
		}
		if c.metrics != nil {
			reg.MustRegister(c.metrics)
		}
	}
	var err error
	if n.debugLn, err = net.Listen("tcp", n.cfg.DebugAddr); err != nil {
		return err
	}
	// Served apart from the roles' goroutines, so that it answers until
	// Close has finished everything else: /readyz says 503 throughout.
	srv := &http.Server{Handler: ops.Handler(live, ready, reg), ReadHeaderTimeout: 5 * time.Second}
	n.ops = srv
	ln := n.debugLn
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("ops listener stopped", zap.Error(err))
		}
	}()
	return nil
}

// OpsAddr is the address of /healthz, /readyz and /metrics, or "".
func (n *Node) OpsAddr() string {
	if n.debugLn == nil {
		return ""
	}
	return n.debugLn.Addr().String()
}

func (n *Node) natsConnected() error {
	for _, nc := range n.conns {
		if !nc.IsConnected() {
			return fmt.Errorf("nats connection %s: %s", nc.Opts.Name, nc.Status())
		}
	}
	return nil
}

func (n *Node) notDraining() error {
	if n.draining.Load() {
		return errors.New("draining")
	}
	return nil
}

// conn is a role's NATS connection.
type conn struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// connect opens the NATS connection of a role: as its user of the
// embedded server, or with the configured credentials.
func (n *Node) connect(role natsauth.Role) (conn, error) {
	// A drain at Close waits at most 5 s, even with NATS gone.
	opts := []nats.Option{nats.Name(string(role)), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond), nats.DrainTimeout(5 * time.Second),
		nats.ErrorHandler(n.natsError)}
	if n.ns != nil {
		// The embedded server is reached in memory, without a socket.
		opts = append(opts, nats.InProcessServer(n.ns), nats.UserInfo(string(role), n.passwords[role]))
	} else {
		opts = append(opts, n.cfg.NATSTLS.options()...)
		if a := n.cfg.NATSAuth; a.User != "" {
			opts = append(opts, nats.UserInfo(a.User, a.Password))
		}
	}
	nc, err := nats.Connect(n.url, opts...)
	if err != nil {
		return conn{}, fmt.Errorf("connect %s as %s: %w", n.url, role, err)
	}
	n.conns = append(n.conns, nc)
	js, err := jetstream.New(nc)
	return conn{nc, js}, err
}

// natsError logs what the server refused a connection asynchronously, such
// as a permissions violation.
func (n *Node) natsError(nc *nats.Conn, sub *nats.Subscription, err error) {
	fields := []zap.Field{zap.String("connection", nc.Opts.Name), zap.Error(err)}
	if sub != nil {
		fields = append(fields, zap.String("subject", sub.Subject))
	}
	n.log.Error("nats", fields...)
}

// embeddedUsers are the users of the embedded server: one per role with a
// random password, and an unrestricted "admin" that connections without
// credentials get, so that the nats CLI works against `parley dev` as is.
func embeddedUsers() ([]*server.User, string, map[natsauth.Role]string) {
	passwords := make(map[natsauth.Role]string)
	users := []*server.User{{Username: "admin", Password: rand.Text()}}
	for _, r := range natsauth.Roles {
		passwords[r] = rand.Text()
		users = append(users, &server.User{Username: string(r), Password: passwords[r], Permissions: natsauth.Permissions(r)})
	}
	return users, "admin", passwords
}

// waitForJetStream returns once JetStream answers; a fresh or clustered
// server may need a moment to elect a meta leader.
func waitForJetStream(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := js.AccountInfo(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("jetstream not available: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (n *Node) run(name string, f func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := f(); err != nil {
			n.log.Error(name+" stopped", zap.Error(err))
		}
	}()
}

// DefaultTokenTTL is the access token lifetime of a Config without one.
const DefaultTokenTTL = 15 * time.Minute

// startAuth makes what issuing and checking access tokens takes: the
// signer, and the bucket of revoked sessions, whose entries last as long
// as a token.
func (n *Node) startAuth(ctx context.Context, ownerJS, gwJS jetstream.JetStream) error {
	key := []byte(n.cfg.TokenKey)
	if len(key) == 0 {
		var err error
		if key, err = devKey(n.cfg.DataDir); err != nil {
			return err
		}
	}
	ttl := n.cfg.TokenTTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	var err error
	n.tokenKey = key
	if n.signer, err = auth.NewSigner(key, ttl); err != nil {
		return err
	}
	// The owner keeps the bucket; a gateway reads it through its own
	// connection, and waits for it when the node has no owner.
	if ownerJS != nil {
		if n.revokedKV, err = accounts.RevocationBucket(ctx, ownerJS, ttl, n.cfg.Streams.Replicas); err != nil {
			return err
		}
	}
	if gwJS != nil {
		n.gwRevokedKV, err = bus.AwaitKeyValue(ctx, gwJS, accounts.RevokedBucket, n.log)
	}
	return err
}

func (n *Node) accountsConfig() accounts.Config {
	c := n.cfg.Accounts
	c.Signer, c.Revoked = n.signer, n.revokedKV
	return c
}

// devKey loads or creates the signing key kept in the data dir, so dev
// tokens survive restarts. Production sets --token-key.
func devKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "token.key")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	key := []byte(hex.EncodeToString(b))
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return key, nil
}

// HTTPAddr is the gateway's listen address (host:port).
func (n *Node) HTTPAddr() string { return n.ln.Addr().String() }

// NATSURL is the URL of the NATS server the node uses.
func (n *Node) NATSURL() string { return n.nc.ConnectedUrl() }

// Gateway returns the gateway role, or nil.
func (n *Node) Gateway() *gateway.Gateway { return n.gw }

// Store returns the node's store.
func (n *Node) Store() store.Store { return n.st }

// Close stops accepting clients, tells connected ones to reconnect, lets the
// processor and archiver finish what they hold, and closes the bus and store.
// Calls after the first do nothing.
func (n *Node) Close() { n.closed.Do(n.close) }

func (n *Node) close() {
	n.draining.Store(true)
	if n.gw != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Gateway.DrainTime+5*time.Second)
		n.gw.Drain(ctx)
		cancel()
		n.gw.Shutdown()
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	for _, c := range n.components {
		if c.stop != nil {
			c.stop()
		}
	}
	for _, nc := range n.conns {
		_ = nc.Drain()
	}
	for _, nc := range n.conns {
		for nc.IsDraining() {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if n.st != nil {
		if err := n.st.Close(); err != nil {
			n.log.Warn("store close", zap.Error(err))
		}
	}
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
	}
	if n.ops != nil {
		_ = n.ops.Close()
	}
}
