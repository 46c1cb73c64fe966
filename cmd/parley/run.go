package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/pkg/bus"
	"github.com/parley-chat/parley/pkg/config"
	"github.com/parley-chat/parley/pkg/logging"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
	"github.com/parley-chat/parley/pkg/store/pebblestore"
	"github.com/parley-chat/parley/pkg/store/scyllastore"
)

// settings are the flags every role shares.
type settings struct {
	logLevel, logFormat string
	storeKind, dataDir  string
	scylla              scyllaFlags
	streams             bus.StreamConfig
	cfg                 node.Config
}

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
	f.String(&s.cfg.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS servers to connect to (comma-separated)")
	f.Int(&s.streams.Partitions, "partitions", bus.DefaultPartitions, "processor partitions; must be the same on every node of a deployment")
	f.Int(&s.streams.Replicas, "replicas", 1, "JetStream replicas of CHAT_IN and CHAT_MSG (3 in a cluster)")
	f.Duration(&s.streams.Duplicates, "dedup-window", 2*time.Minute, "JetStream dedup window of CHAT_IN and CHAT_MSG")
	f.Duration(&s.streams.MsgMaxAge, "msg-max-age", 7*24*time.Hour, "how long CHAT_MSG keeps messages for live catch-up (history serves older ones)")
	f.String(&s.cfg.HTTPAddr, "http-addr", ":8080", "gateway HTTP and WebSocket listen address")
	f.String(&s.cfg.TokenKey, "token-key", "", "access token signing key, at least 32 bytes (default: generated and kept in the data dir)")
	f.Duration(&s.cfg.TokenTTL, "token-ttl", 24*time.Hour, "access token lifetime")
	f.Int(&s.cfg.Gateway.MaxBodySize, "max-body", protocol.DefaultMaxBodySize, "largest message body in bytes")
	f.Bool(&s.cfg.Gateway.DevTokens, "dev-tokens", dev, "serve POST /api/v1/dev/tokens, which issues a token for any user (development only)")
	f.Duration(&s.cfg.Gateway.Heartbeat, "ws-heartbeat", 25*time.Second, "WebSocket ping interval")
	f.Duration(&s.cfg.Gateway.IdleTimeout, "ws-idle-timeout", 60*time.Second, "close connections silent for this long")
	f.Duration(&s.cfg.Processor.PinnedTTL, "processor-pinned-ttl", 10*time.Second, "failover time when an active processor stops pulling")
	f.Duration(&s.cfg.Processor.AckWait, "processor-ack-wait", 10*time.Second, "redelivery delay of messages a failed processor held")
}

// finish builds the logger and the store opener once flags are parsed.
func (s *settings) finish() (*zap.Logger, error) {
	log, err := logging.New(s.logLevel, s.logFormat)
	if err != nil {
		return nil, err
	}
	s.cfg.Streams = s.streams
	s.cfg.Processor.MaxBodySize = s.cfg.Gateway.MaxBodySize
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
	bindCommon(f, &s, true)
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
		fmt.Printf("\nParley is running at http://localhost:%s  (WebSocket ws://localhost:%[1]s/ws, NATS %s, monitoring http://%s:%d)\nPress Ctrl-C to stop.\n\n",
			portOf(n.HTTPAddr()), n.NATSURL(), nats.Host, nats.HTTPPort)
	})
}

// serve runs a node until ctx ends (Ctrl-C, SIGTERM), then stops it
// cleanly; started runs once the node is up.
func serve(ctx context.Context, cfg node.Config, log *zap.Logger, started func(*node.Node)) error {
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
		bindCommon(f, &s, false)
		if err := f.Parse(args); err != nil {
			return err
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

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}
