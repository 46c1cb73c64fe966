package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"

	gwmedia "github.com/parley-chat/parley/gateway/media"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/config"
	"github.com/parley-chat/parley/internal/logging"
	"github.com/parley-chat/parley/internal/presence"
	"github.com/parley-chat/parley/internal/services/accounts"
	"github.com/parley-chat/parley/internal/store/pebblestore"
	"github.com/parley-chat/parley/internal/store/scyllastore"
	"github.com/parley-chat/parley/internal/tlsreload"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

// settings are a command's parsed flags.
type settings struct {
	logLevel, logFormat string
	storeKind, dataDir  string
	scylla              scyllaFlags
	streams             bus.StreamConfig
	cfg                 node.Config
	// argon2id costs, as flags (accounts.HashParams are unsigned)
	passwordMemory, passwordIterations int
	bound                              map[string]bool // the flag groups bound
}

// flagGroup registers the flags of one part of Parley. A command binds
// the groups of the roles it runs, each once, so `parley processor -h`
// lists only what a processor reads.
type flagGroup struct {
	name string
	bind func(f *config.Flags, s *settings, dev bool)
}

var (
	tokenFlags     = flagGroup{"tokens", bindTokens}
	bodyFlags      = flagGroup{"body", bindBody}
	gatewayFlags   = flagGroup{"gateway", bindGateway}
	tlsFlags       = flagGroup{"tls", bindTLS}
	processorFlags = flagGroup{"processor", bindProcessor}
	accountFlags   = flagGroup{"accounts", bindAccounts}
	mediaFlags     = flagGroup{"media", bindMedia}
)

// roleFlags are the flag groups of each role, besides the common ones.
var roleFlags = map[string][]flagGroup{
	"gateway":   {tokenFlags, bodyFlags, gatewayFlags, tlsFlags, mediaFlags},
	"processor": {bodyFlags, processorFlags, mediaFlags},
	"archiver":  {tokenFlags, accountFlags},
}

// bindRoles registers the common flags, then the groups of each role,
// each group once.
func bindRoles(f *config.Flags, s *settings, dev bool, roles ...string) {
	bindCommon(f, s, dev)
	s.bound = map[string]bool{}
	for _, role := range roles {
		for _, g := range roleFlags[role] {
			if !s.bound[g.name] {
				s.bound[g.name] = true
				g.bind(f, s, dev)
			}
		}
	}
}

// bindCommon registers what every role reads: logging, the data dir, the
// store, the streams and the ops listener.
func bindCommon(f *config.Flags, s *settings, dev bool) {
	f.String(&s.logLevel, "log-level", "info", "debug, info, warn or error")
	format := "json"
	if dev {
		format = "console"
	}
	f.String(&s.logFormat, "log-format", format, "json or console")
	f.String(&s.dataDir, "data-dir", "./data", "directory for the embedded NATS store, the Pebble store and the dev signing key")
	f.String(&s.storeKind, "store", "pebble", "history and state store: pebble (embedded, one process) or scylla (ScyllaDB/Cassandra cluster)")
	s.scylla.bind(f)
	f.Int(&s.streams.Partitions, "partitions", 0, fmt.Sprintf("processor partitions, fixed when CHAT_MSG is created (0: the stored count, %d for a new deployment); a different count is refused", bus.DefaultPartitions))
	streams := bus.StreamConfig{}.Defaults()
	f.Int(&s.streams.Replicas, "replicas", streams.Replicas, "JetStream replicas of CHAT_MSG and the buckets (3 in a cluster)")
	f.Duration(&s.streams.MsgMaxAge, "msg-max-age", streams.MsgMaxAge, "how long CHAT_MSG keeps messages for live catch-up (history serves older ones)")
	f.Duration(&s.cfg.Presence.TTL, "presence-ttl", presence.DefaultTTL, "a killed gateway's users go offline within this (each gateway renews its heartbeat every third of it; at least 3s)")
	f.String(&s.cfg.DebugAddr, "debug-addr", "", "this process's ops listener: /healthz, /readyz, /metrics and /debug/pprof, whatever its roles (e.g. 127.0.0.1:6060; empty: none). Keep it private")
}

// bindTokens: the access token key, shared by gateways (which check
// tokens) and archivers (whose accounts service signs them).
func bindTokens(f *config.Flags, s *settings, _ bool) {
	f.String(&s.cfg.TokenKey, "token-key", "", "access token signing key, at least 32 bytes (default: generated and kept in the data dir)")
	f.Duration(&s.cfg.TokenTTL, "token-ttl", node.DefaultTokenTTL, "access token lifetime; logging out revokes tokens at once, so keep it short but the same on every node")
}

// bindBody: the largest message body, checked by gateways and processors.
func bindBody(f *config.Flags, s *settings, _ bool) {
	f.Int(&s.cfg.Gateway.MaxBodySize, "max-body", protocol.DefaultMaxBodySize, "largest message body in bytes")
}

func bindProcessor(f *config.Flags, s *settings, _ bool) { s.cfg.Processor.BindFlags(f) }

// bindAccounts: logins and password hashing (the archiver role's accounts
// service).
func bindAccounts(f *config.Flags, s *settings, _ bool) {
	f.Duration(&s.cfg.Accounts.RefreshTTL, "refresh-ttl", accounts.DefaultRefreshTTL, "login session lifetime: refresh tokens work this long after login")
	f.Int(&s.passwordMemory, "password-memory", int(accounts.DefaultHashParams.Memory), "argon2id memory per password hash, KiB")
	f.Int(&s.passwordIterations, "password-iterations", int(accounts.DefaultHashParams.Iterations), "argon2id passes per password hash")
}

// bindMedia: where uploads are stored (gateways write them, processors
// make their previews and delete them).
func bindMedia(f *config.Flags, s *settings, _ bool) {
	m := &s.cfg.Media
	f.String(&m.Store.Kind, "media-store", "nats", "where uploads are kept: nats (the JetStream object store) or s3 (an S3-compatible bucket, downloads by presigned URL)")
	f.String(&m.Store.S3.Endpoint, "media-s3-endpoint", "", "S3 endpoint, host:port")
	f.String(&m.Store.S3.Bucket, "media-s3-bucket", "parley-media", "S3 bucket")
	f.String(&m.Store.S3.Region, "media-s3-region", "", "S3 region")
	f.Bool(&m.Store.S3.Secure, "media-s3-tls", true, "reach the S3 endpoint over https")
	f.String(&m.Store.S3.AccessKey, "media-s3-access-key", "", "S3 access key")
	f.String(&m.Store.S3.SecretKey, "media-s3-secret-key", "", "S3 secret key (prefer the environment variable)")
	f.Int64(&m.MaxFileBytes, "media-max-file", gwmedia.DefaultMaxFileBytes, "largest upload in bytes, refused while it streams")
	f.Int64(&m.UserQuotaBytes, "media-user-quota", gwmedia.DefaultUserQuotaBytes, "bytes of uploads a user may hold before sending them")
	f.Bool(&m.Scan, "media-scan", false, "hold each upload until a virus scanner answers on parley.media.scan")
}

// bindGateway: the WebSocket and HTTP edge.
func bindGateway(f *config.Flags, s *settings, dev bool) {
	f.String(&s.cfg.HTTPAddr, "http-addr", ":8080", "gateway HTTP and WebSocket listen address")
	f.Bool(&s.cfg.ReusePort, "reuseport", false, "set SO_REUSEPORT so several gateway processes share --http-addr")
	s.cfg.Gateway.BindFlags(f, dev)
}

// bindTLS registers the flags that make a gateway serve TLS.
func bindTLS(f *config.Flags, s *settings, _ bool) {
	f.String(&s.cfg.Gateway.TLS.CertFile, "tls-cert", "", "serve https and wss only, with the certificate (and chain) in this PEM file; it and --tls-key are re-read when they change, looked at every "+tlsreload.DefaultInterval.String()+" at most. Selects the goroutine WebSocket transport")
	f.String(&s.cfg.Gateway.TLS.KeyFile, "tls-key", "", "the private key (PEM) of --tls-cert")
}

// finish builds the logger and the store opener once flags are parsed.
func (s *settings) finish() (*zap.Logger, error) {
	log, err := logging.New(s.logLevel, s.logFormat)
	if err != nil {
		return nil, err
	}
	s.cfg.Streams = s.streams
	s.cfg.Processor.MaxBodySize = s.cfg.Gateway.MaxBodySize
	if s.cfg.Processor.DedupHorizon > s.streams.MsgMaxAge {
		return nil, fmt.Errorf("--dedup-horizon (%s) must not exceed --msg-max-age (%s): the processor reloads client message ids from CHAT_MSG", s.cfg.Processor.DedupHorizon, s.streams.MsgMaxAge)
	}
	if tls := s.cfg.Gateway.TLS; (tls.CertFile == "") != (tls.KeyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if tls := s.cfg.NATSTLS; (tls.CertFile == "") != (tls.KeyFile == "") {
		return nil, errors.New("--nats-cert and --nats-key go together")
	}
	if s.bound[accountFlags.name] {
		if s.passwordMemory < 8 || s.passwordIterations < 1 {
			return nil, fmt.Errorf("--password-memory must be at least 8 KiB and --password-iterations at least 1")
		}
		s.cfg.Accounts.Hash = accounts.HashParams{Memory: uint32(s.passwordMemory), Iterations: uint32(s.passwordIterations), Threads: 1}
	}
	s.cfg.DataDir = s.dataDir
	switch s.storeKind {
	case "pebble":
		dir := filepath.Join(s.dataDir, "store")
		s.cfg.OpenStore = func(context.Context) (store.Store, error) { return pebblestore.Open(dir, log.Named("pebble")) }
	case "scylla":
		sc := s.scylla.config()
		migrate := s.scylla.migrate
		s.cfg.OpenStore = func(ctx context.Context) (store.Store, error) {
			if migrate {
				if err := scyllastore.Migrate(ctx, sc, log.Named("scylla")); err != nil {
					return nil, err
				}
			}
			return scyllastore.Open(ctx, sc, log.Named("scylla"))
		}
	default:
		return nil, fmt.Errorf("--store=%s: want pebble or scylla", s.storeKind)
	}
	return log, nil
}

func runDev(ctx context.Context, args []string) error {
	var s settings
	f := config.NewFlags("parley dev")
	bindRoles(f, &s, true, "gateway", "processor", "archiver")
	nats := &s.cfg.NATS
	f.String(&nats.Host, "nats-host", "127.0.0.1", "embedded NATS listen host")
	f.Int(&nats.Port, "nats-port", 4222, "embedded NATS client port")
	f.Int(&nats.HTTPPort, "nats-http-port", 8222, "embedded NATS monitoring port (0 disables)")
	f.Bool(&nats.SyncAlways, "nats-sync-always", false, "fsync every JetStream write: survives power loss, much slower (default syncs every 2 minutes)")
	if err := f.Parse(args); err != nil {
		return err
	}
	log, err := s.finish()
	if err != nil {
		return err
	}
	defer log.Sync()
	s.cfg.Embedded = true
	nats.Name = "parley-dev"
	nats.StoreDir = filepath.Join(s.dataDir, "nats")
	s.cfg.Roles = node.Roles{Gateway: true, Processor: true, Archiver: true}
	return serve(ctx, s.cfg, log, func(n *node.Node) {
		web, ws := "http", "ws"
		if s.cfg.Gateway.TLS.CertFile != "" {
			web, ws = "https", "wss"
		}
		port := portOf(n.HTTPAddr())
		fmt.Printf("\nParley is running at %s://localhost:%s  (WebSocket %s://localhost:%s/ws, NATS %s, monitoring http://%s:%d)\nPress Ctrl-C to stop.\n\n",
			web, port, ws, port, n.NATSURL(), nats.Host, nats.HTTPPort)
	})
}

// serve runs a node until ctx ends (Ctrl-C, SIGTERM), then stops it
// cleanly; started runs once the node is up.
func serve(ctx context.Context, cfg node.Config, log *zap.Logger, started func(*node.Node)) error {
	if err := checkListen(listenAddrs(cfg)); err != nil {
		return err
	}
	n, err := node.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	started(n)
	<-ctx.Done()
	log.Info("shutting down")
	n.Close()
	return nil
}

func roleCommand(role string) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		var s settings
		f := config.NewFlags("parley " + role)
		bindRoles(f, &s, false, role)
		f.String(&s.cfg.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS servers to connect to (comma-separated; tls:// for TLS)")
		f.String(&s.cfg.NATSTLS.CAFile, "nats-ca", "", "verify the NATS servers with the CA certificates in this PEM file (implies TLS)")
		f.String(&s.cfg.NATSTLS.CertFile, "nats-cert", "", "client certificate (PEM) to present to NATS, for servers that require one (implies TLS)")
		f.String(&s.cfg.NATSTLS.KeyFile, "nats-key", "", "the private key (PEM) of --nats-cert")
		f.String(&s.cfg.NATSAuth.User, "nats-user", "", "NATS user of this role (parley-"+role+" in the users parley nats-users writes); empty: none")
		f.String(&s.cfg.NATSAuth.Password, "nats-password", "", "password of --nats-user (prefer the environment variable)")
		gcPercent := gatewayGCPercent()
		if role == "gateway" {
			f.Int(&gcPercent, "gc-percent", gcPercent, "garbage collector target of this process, as GOGC (default: GOGC if set, else 50): an idle connection costs about its live heap × (1 + this/100) of RSS, so lower holds more connections per GiB for some CPU under load")
		}
		if err := f.Parse(args); err != nil {
			return err
		}
		if role == "gateway" {
			debug.SetGCPercent(gcPercent)
		}
		log, err := s.finish()
		if err != nil {
			return err
		}
		defer log.Sync()
		s.cfg.Roles = node.Roles{Gateway: role == "gateway", Processor: role == "processor", Archiver: role == "archiver"}
		return serve(ctx, s.cfg, log, func(*node.Node) {})
	}
}

// gatewayGCPercent is a gateway's default garbage collector target: GOGC
// when set, else 50. A gateway's heap is mostly long-lived connection
// state, so the runtime's default of 100 doubles its memory for little CPU
// saved: in the bench, 50 and 25 cost no measurable fan-out CPU
// (bench/results/idle-20261123).
func gatewayGCPercent() int {
	switch v := os.Getenv("GOGC"); v {
	case "":
		return 50
	case "off":
		return -1
	default:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		return 100
	}
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}
