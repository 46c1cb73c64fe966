// Package natsembed starts a nats-server with JetStream inside this process:
// the whole bus of `parley dev`, a node of a loopback cluster, or a test's
// server. It is the only Parley package that links nats-server; clients
// and roles reach NATS through nats.go alone.
package natsembed

import (
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config configures an in-process nats-server with JetStream.
type Config struct {
	Name     string
	StoreDir string // JetStream file store
	Host     string // client listener; "" means 127.0.0.1
	Port     int    // client port; -1 picks a free one
	HTTPPort int    // monitoring port; 0 disables it
	// SyncAlways fsyncs every JetStream write. Without it the file store
	// syncs every 2 minutes, so a crash of the whole machine (not just the
	// process) can lose the last interval of a single node; replication is
	// what protects clusters.
	SyncAlways bool
	// Cluster settings; leave ClusterPort 0 for a single node.
	ClusterName string
	ClusterPort int
	Routes      []string // nats-route://host:port of peers
	// Users, when set, are the only ones admitted (user and password);
	// NoAuthUser names the one a connection without credentials gets.
	Users      []*server.User
	NoAuthUser string
	// Logs turns on the server's own log lines.
	Logs bool
}

// Start starts a nats-server in this process and waits until it
// accepts connections.
func Start(c Config) (*server.Server, error) {
	host := c.Host
	if host == "" {
		host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName:         c.Name,
		Host:               host,
		Port:               c.Port,
		HTTPHost:           host,
		HTTPPort:           c.HTTPPort,
		JetStream:          true,
		StoreDir:           c.StoreDir,
		NoSigs:             true,
		MaxPayload:         8 << 20,
		JetStreamMaxMemory: 256 << 20,
	}
	if c.SyncAlways {
		opts.SyncAlways = true
	}
	opts.Users, opts.NoAuthUser = c.Users, c.NoAuthUser
	if c.ClusterPort != 0 {
		opts.Cluster = server.ClusterOpts{Name: c.ClusterName, Host: host, Port: c.ClusterPort}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	if c.Logs {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server did not start within 30s")
	}
	return s, nil
}
