// Package scyllatest runs tests against a real Cassandra or ScyllaDB node:
// PARLEY_CASSANDRA_HOSTS (comma separated, default 127.0.0.1:9042), such as
// the one deploy/cassandra/cassandra-node starts. Each test gets a fresh,
// migrated keyspace, dropped when it ends.
//
// Without a node the tests skip, except where a missing node is an error:
// with CI=true or PARLEY_REQUIRE_CASSANDRA=1 they fail.
package scyllatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/internal/store/scyllastore"
)

// Hosts returns the node's contact points.
func Hosts() []string {
	if h := os.Getenv("PARLEY_CASSANDRA_HOSTS"); h != "" {
		return strings.Split(h, ",")
	}
	return []string{"127.0.0.1:9042"}
}

// Require skips t when no node answers, or fails it where a missing node
// is an error.
func Require(t testing.TB) {
	t.Helper()
	var errs []string
	for _, h := range Hosts() {
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, "9042")
		}
		c, err := net.DialTimeout("tcp", h, 2*time.Second)
		if err == nil {
			c.Close()
			return
		}
		errs = append(errs, err.Error())
	}
	msg := "no Cassandra/ScyllaDB node (start one with deploy/cassandra/cassandra-node start): " + strings.Join(errs, "; ")
	if os.Getenv("CI") == "true" || os.Getenv("PARLEY_REQUIRE_CASSANDRA") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Keyspace requires a node and returns the configuration of a new keyspace
// with a random name, replication factor 1 and the default consistency,
// migrated to the current schema and dropped when t ends.
func Keyspace(t testing.TB) scyllastore.Config {
	t.Helper()
	Require(t)
	var b [6]byte
	rand.Read(b[:])
	cfg := scyllastore.Config{
		Hosts:             Hosts(),
		Keyspace:          "parley_test_" + hex.EncodeToString(b[:]),
		ReplicationFactor: 1,
		Timeout:           20 * time.Second, // a loaded CI node is slow on DDL
	}
	t.Cleanup(func() { Exec(t, cfg, "DROP KEYSPACE IF EXISTS "+cfg.Keyspace) })
	if err := scyllastore.Migrate(context.Background(), cfg, logger(t)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Open opens the store in cfg's keyspace, closed when t ends.
func Open(t testing.TB, cfg scyllastore.Config) *scyllastore.Store {
	t.Helper()
	st, err := scyllastore.Open(context.Background(), cfg, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Session opens a raw driver session on cfg's hosts and keyspace ("" for
// none), for statements the store does not offer. Close it when done.
func Session(t testing.TB, cfg scyllastore.Config, keyspace string) *gocql.Session {
	t.Helper()
	c := gocql.NewCluster(cfg.Hosts...)
	c.Keyspace = keyspace
	c.ProtoVersion = 4
	c.Consistency = gocql.One
	c.Timeout = cfg.Timeout
	s, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Exec runs one statement outside any keyspace.
func Exec(t testing.TB, cfg scyllastore.Config, stmt string, args ...any) {
	t.Helper()
	s := Session(t, cfg, "")
	defer s.Close()
	if err := s.Query(stmt, args...).Exec(); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// logger passes on the store's warnings and errors only: its per-keyspace
// info lines would drown the test's own.
func logger(t testing.TB) *zap.Logger { return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)) }
