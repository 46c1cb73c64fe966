package main

import (
	"context"
	"strings"
	"time"

	"github.com/parley-chat/parley/internal/config"
	"github.com/parley-chat/parley/internal/logging"
	"github.com/parley-chat/parley/internal/store/scyllastore"
)

// scyllaFlags are the --scylla-* flags of the ScyllaDB store.
type scyllaFlags struct {
	hosts, keyspace, consistency, localDC string
	username, password                    string
	caFile, certFile, keyFile             string
	tls, insecure, migrate                bool
	replication                           int
	timeout                               time.Duration
}

func (s *scyllaFlags) bind(f *config.Flags) {
	f.String(&s.hosts, "scylla-hosts", "127.0.0.1:9042", "ScyllaDB contact points, host[:port] comma-separated (the CQL port; the driver finds shard-aware ports itself)")
	f.String(&s.keyspace, "scylla-keyspace", scyllastore.DefaultKeyspace, "keyspace")
	f.String(&s.consistency, "scylla-consistency", scyllastore.DefaultConsistency, "consistency of reads and writes")
	f.String(&s.localDC, "scylla-local-dc", "", "datacenter to route to (also makes migrate use NetworkTopologyStrategy)")
	f.String(&s.username, "scylla-username", "", "username (PasswordAuthenticator)")
	f.String(&s.password, "scylla-password", "", "password")
	f.Bool(&s.tls, "scylla-tls", false, "connect with TLS")
	f.String(&s.caFile, "scylla-ca-file", "", "CA certificate (PEM) to verify nodes; implies TLS")
	f.String(&s.certFile, "scylla-cert-file", "", "client certificate (PEM); implies TLS")
	f.String(&s.keyFile, "scylla-key-file", "", "client key (PEM)")
	f.Bool(&s.insecure, "scylla-insecure-skip-verify", false, "do not verify node certificates (tests only)")
	f.Int(&s.replication, "scylla-replication", scyllastore.DefaultReplicationFactor, "replication factor when migrate creates the keyspace")
	f.Duration(&s.timeout, "scylla-timeout", scyllastore.DefaultTimeout, "timeout of one request")
	f.Bool(&s.migrate, "scylla-migrate", false, "apply pending schema migrations at start (else run \"parley migrate\" first)")
}

func (s *scyllaFlags) config() scyllastore.Config {
	return scyllastore.Config{
		Hosts:              strings.Split(s.hosts, ","),
		Keyspace:           s.keyspace,
		Consistency:        s.consistency,
		LocalDC:            s.localDC,
		Username:           s.username,
		Password:           s.password,
		TLS:                s.tls,
		CAFile:             s.caFile,
		CertFile:           s.certFile,
		KeyFile:            s.keyFile,
		InsecureSkipVerify: s.insecure,
		ReplicationFactor:  s.replication,
		Timeout:            s.timeout,
	}
}

// runMigrate applies pending CQL migrations: `parley migrate`.
func runMigrate(ctx context.Context, args []string) error {
	var s scyllaFlags
	var level string
	f := config.NewFlags("parley migrate")
	s.bind(f)
	f.String(&level, "log-level", "info", "debug, info, warn or error")
	if err := f.Parse(args); err != nil {
		return err
	}
	log, err := logging.New(level, "console")
	if err != nil {
		return err
	}
	return scyllastore.Migrate(ctx, s.config(), log)
}
