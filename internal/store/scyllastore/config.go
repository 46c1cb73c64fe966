package scyllastore

import (
	"fmt"
	"regexp"
	"time"

	"github.com/gocql/gocql"
	"go.uber.org/zap"
)

// Config says how to reach the cluster. Zero fields take the defaults noted.
type Config struct {
	// Hosts are contact points, "host" or "host:port" (the CQL port, not
	// ScyllaDB's shard-aware port); the driver discovers the other nodes.
	Hosts []string
	// Port, when set, is the CQL port of every node and overrides ports in
	// Hosts (default: the port in Hosts, else 9042).
	Port int
	// Keyspace holds Parley's tables (default "parley").
	Keyspace string
	// Consistency of every read and write (default LOCAL_QUORUM).
	Consistency string
	// LocalDC, when set, routes queries to that datacenter only and makes
	// Migrate create the keyspace with NetworkTopologyStrategy; otherwise
	// SimpleStrategy.
	LocalDC string
	// Username and Password enable PasswordAuthenticator.
	Username, Password string
	// TLS encrypts connections, verifying the server against the system
	// roots or CAFile (PEM). CertFile and KeyFile add a client certificate.
	// Setting CAFile or CertFile implies TLS. InsecureSkipVerify disables
	// server verification (tests only).
	TLS                bool
	CAFile             string
	CertFile, KeyFile  string
	InsecureSkipVerify bool
	// Timeout bounds each request (default: the driver's 11 s; keep it above
	// the server-side timeouts). ConnectTimeout bounds connection set-up
	// (default: the driver's 11 s).
	Timeout, ConnectTimeout time.Duration
	// ProtoVersion is the native protocol version (default 4, which both
	// ScyllaDB and Cassandra speak).
	ProtoVersion int
	// ReplicationFactor is used by Migrate when it creates the keyspace
	// (default 3). Existing keyspaces are never altered.
	ReplicationFactor int
}

// Defaults of the zero fields (the flags of `parley` use them too).
const (
	DefaultKeyspace          = "parley"
	DefaultConsistency       = "LOCAL_QUORUM"
	defaultProtoVersion      = 4
	DefaultReplicationFactor = 3
	// DefaultTimeout is the driver's own timeout of one request.
	DefaultTimeout = 11 * time.Second
)

// keyspaceName is what Migrate may interpolate into CREATE KEYSPACE.
var keyspaceName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

// withDefaults returns cfg with its zero fields defaulted, or an error when
// cfg cannot work.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Hosts) == 0 {
		return cfg, fmt.Errorf("scyllastore: no hosts")
	}
	if cfg.Keyspace == "" {
		cfg.Keyspace = DefaultKeyspace
	}
	if !keyspaceName.MatchString(cfg.Keyspace) {
		return cfg, fmt.Errorf("scyllastore: invalid keyspace name %q", cfg.Keyspace)
	}
	if cfg.Consistency == "" {
		cfg.Consistency = DefaultConsistency
	}
	if _, err := gocql.ParseConsistencyWrapper(cfg.Consistency); err != nil {
		return cfg, fmt.Errorf("scyllastore: consistency %q: %w", cfg.Consistency, err)
	}
	if cfg.ProtoVersion == 0 {
		cfg.ProtoVersion = defaultProtoVersion
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = DefaultReplicationFactor
	}
	if cfg.ReplicationFactor < 0 {
		return cfg, fmt.Errorf("scyllastore: negative replication factor %d", cfg.ReplicationFactor)
	}
	return cfg, nil
}

// cluster builds the driver configuration for keyspace ("" for none); cfg
// must have been through withDefaults.
func (cfg Config) cluster(keyspace string, log *zap.Logger) *gocql.ClusterConfig {
	c := gocql.NewCluster(cfg.Hosts...)
	c.Keyspace = keyspace
	c.Port = cfg.Port
	c.ProtoVersion = cfg.ProtoVersion
	c.Consistency, _ = gocql.ParseConsistencyWrapper(cfg.Consistency) // checked by withDefaults
	if cfg.Timeout > 0 {
		c.Timeout = cfg.Timeout
	}
	if cfg.ConnectTimeout > 0 {
		c.ConnectTimeout = cfg.ConnectTimeout
	}
	// Send each request straight to a replica of its partition, preferring
	// the local datacenter when one is named.
	fallback := gocql.RoundRobinHostPolicy()
	if cfg.LocalDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(cfg.LocalDC)
	}
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback)
	// A request that may already have run is retried only when idempotent;
	// every Parley request is. No speculative execution: the driver takes
	// the first answer of any attempt, errors included, so an extra attempt
	// that finds no replica left to try (on a single node, always) would
	// fail a merely slow request at once with "no hosts available"; and
	// duplicated requests add load just when the cluster is slow.
	c.RetryPolicy = &gocql.ExponentialBackoffRetryPolicy{NumRetries: 3, Min: 50 * time.Millisecond, Max: time.Second}
	if cfg.Username != "" {
		c.Authenticator = gocql.PasswordAuthenticator{Username: cfg.Username, Password: cfg.Password}
	}
	if cfg.TLS || cfg.CAFile != "" || cfg.CertFile != "" {
		c.SslOpts = &gocql.SslOptions{
			CaPath:                 cfg.CAFile,
			CertPath:               cfg.CertFile,
			KeyPath:                cfg.KeyFile,
			EnableHostVerification: !cfg.InsecureSkipVerify,
		}
	}
	c.Logger = zap.NewStdLog(log.Named("gocql"))
	return c
}

// connect opens a session on keyspace ("" for none).
func (cfg Config) connect(keyspace string, log *zap.Logger) (*gocql.Session, error) {
	s, err := cfg.cluster(keyspace, log).CreateSession()
	if err != nil {
		return nil, fmt.Errorf("scyllastore: connect to %v: %w", cfg.Hosts, err)
	}
	return s, nil
}
