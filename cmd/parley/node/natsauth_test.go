package node_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/internal/natsauth"
	"github.com/parley-chat/parley/internal/natsembed"
	"github.com/parley-chat/parley/pkg/store"
)

// The roles run as separate nodes against a NATS server that admits only
// Parley's users, each with its own credentials and permissions: a
// gateway started first waits for the processor to create the streams,
// then users chat through it.
func TestSplitRolesWithNATSUsers(t *testing.T) {
	dir := t.TempDir()
	users := []*server.User{}
	passwords := map[natsauth.Role]string{}
	for _, r := range natsauth.Roles {
		passwords[r] = "pw-" + r.Short()
		users = append(users, &server.User{Username: string(r), Password: passwords[r], Permissions: natsauth.Permissions(r)})
	}
	ns, err := natsembed.Start(natsembed.Config{Name: "auth", Port: -1, StoreDir: filepath.Join(dir, "nats"), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)

	stores := make(chan store.Store, 2)
	roleConfig := func(name string, roles node.Roles, r natsauth.Role) node.Config {
		cfg := testConfig(t, filepath.Join(dir, name))
		cfg.Roles = roles
		cfg.Embedded, cfg.NATSURL = false, ns.ClientURL()
		cfg.NATSAuth = node.NATSAuth{User: string(r), Password: passwords[r]}
		cfg.TokenKey = "a-token-key-shared-by-gateways-and-archivers"
		return cfg
	}
	// The gateway, first: it waits for the streams.
	gwCfg := roleConfig("gateway", node.Roles{Gateway: true}, natsauth.Gateway)
	gwCfg.OpenStore = func(context.Context) (store.Store, error) { return sharedStore{<-stores}, nil }
	gwStarted := make(chan *node.Node, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		n, err := node.Start(ctx, gwCfg, zaptest.NewLogger(t))
		if err != nil {
			t.Errorf("gateway: %v", err)
		}
		gwStarted <- n
	}()
	time.Sleep(time.Second) // the gateway is waiting now

	proc := startNode(t, roleConfig("processor", node.Roles{Processor: true}, natsauth.Processor))
	stores <- proc.Store()
	stores <- proc.Store()
	archCfg := roleConfig("archiver", node.Roles{Archiver: true}, natsauth.Archiver)
	archCfg.OpenStore = func(context.Context) (store.Store, error) { return sharedStore{<-stores}, nil }
	startNode(t, archCfg)
	gw := <-gwStarted
	if gw == nil {
		t.FailNow()
	}
	t.Cleanup(gw.Close)

	room := createRoom(t, gw, "alice", "bob")
	alice, bob := dial(t, gw, "alice", ""), dial(t, gw, "bob", "")
	subscribe(t, alice, room)
	subscribe(t, bob, room)
	chat(t, alice, room, "with-nats-users", alice, bob)

	// A wrong password is refused at start, promptly.
	bad := roleConfig("bad", node.Roles{Processor: true}, natsauth.Processor)
	bad.NATSAuth.Password = "wrong"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n, err := node.Start(ctx, bad, zaptest.NewLogger(t)); err == nil {
		n.Close()
		t.Fatal("a processor with a wrong NATS password started")
	}
}
