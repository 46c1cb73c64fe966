package natsauth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/natsauth"
)

// startServer runs a nats-server from a configuration holding the block
// ServerConfig writes, and returns its URL and the roles' passwords.
func startServer(t *testing.T) (string, map[natsauth.Role]string) {
	t.Helper()
	passwords := map[natsauth.Role]string{}
	for _, r := range natsauth.Roles {
		passwords[r] = "pw-" + string(r)
	}
	// The cheapest hashes: the server checks them at every connection,
	// slowly under the race detector.
	block, err := natsauth.ServerConfig(passwords, "pw-admin", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	text := fmt.Sprintf("listen: \"127.0.0.1:-1\"\njetstream {store_dir: %q}\n%s", filepath.Join(dir, "js"), block)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("%v in\n%s", err, text)
	}
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL(), passwords
}

type session struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	denied chan string // permission violations the server reported
}

func connect(t *testing.T, url string, r natsauth.Role, password string) session {
	t.Helper()
	denied := make(chan string, 16)
	nc, err := nats.Connect(url, nats.UserInfo(string(r), password), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(err.Error(), "Permissions Violation") {
			denied <- err.Error()
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return session{nc, js, denied}
}

// refused asserts that the server reported a permissions violation on
// subject.
func (s session) refused(t *testing.T, what, subject string) {
	t.Helper()
	select {
	case v := <-s.denied:
		if !strings.Contains(v, subject) {
			t.Errorf("%s: violation %q, want one on %s", what, v, subject)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: no permissions violation reported", what)
	}
}

// Each role is refused what it must never do, while the processor
// writes CHAT_MSG and the gateway sends requests and reads the stream.
func TestRolePermissions(t *testing.T) {
	url, pw := startServer(t)
	ctx := context.Background()
	proc := connect(t, url, natsauth.Processor, pw[natsauth.Processor])
	if _, err := bus.EnsureStreams(ctx, proc.js, bus.StreamConfig{Partitions: 4}); err != nil {
		t.Fatalf("the processor ensures the streams: %v", err)
	}
	if _, err := proc.js.Publish(ctx, bus.MsgSubject("r1"), []byte("m")); err != nil {
		t.Fatalf("the processor appends to CHAT_MSG: %v", err)
	}
	if _, err := proc.nc.Subscribe("parley.send.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}

	gw := connect(t, url, natsauth.Gateway, pw[natsauth.Gateway])
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Second) }
	c, cancel := short()
	if _, err := gw.js.Publish(c, bus.MsgSubject("r1"), []byte("forged")); err == nil {
		t.Error("a gateway appended to CHAT_MSG")
	}
	cancel()
	gw.refused(t, "gateway publishing to CHAT_MSG", "chat.msg.r1")
	c, cancel = short()
	if err := gw.js.DeleteStream(c, bus.StreamMsg); err == nil {
		t.Error("a gateway deleted CHAT_MSG")
	}
	cancel()
	gw.refused(t, "gateway deleting CHAT_MSG", "$JS.API.STREAM.DELETE.CHAT_MSG")
	c, cancel = short()
	if _, err := gw.js.UpdateStream(c, bus.MsgStreamConfig(bus.StreamConfig{}.Defaults(), 4)); err == nil {
		t.Error("a gateway changed CHAT_MSG")
	}
	cancel()
	gw.refused(t, "gateway updating CHAT_MSG", "$JS.API.STREAM.UPDATE.CHAT_MSG")
	c, cancel = short()
	if _, err := gw.js.CreateOrUpdateConsumer(c, bus.StreamMsg, jetstream.ConsumerConfig{Durable: "archiver"}); err == nil {
		t.Error("a gateway made a durable consumer of CHAT_MSG")
	}
	cancel()
	gw.refused(t, "gateway creating a consumer of CHAT_MSG", "$JS.API.CONSUMER.CREATE.CHAT_MSG")
	if _, err := gw.nc.Subscribe("parley.send.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	gw.refused(t, "gateway subscribing to sends", "parley.send.>")
	// What a gateway does: read the stream, send to a processor.
	c, cancel = short()
	defer cancel()
	s, err := gw.js.Stream(c, bus.StreamMsg)
	if err != nil || s.CachedInfo().State.Msgs != 1 {
		t.Fatalf("gateway reading CHAT_MSG: %v (the forged message must not be there)", err)
	}
	if err := gw.nc.Publish(bus.SendSubject("r1", 4), []byte("send")); err != nil {
		t.Fatal(err)
	}

	arch := connect(t, url, natsauth.Archiver, pw[natsauth.Archiver])
	if err := arch.nc.Publish(bus.MsgSubject("r1"), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	arch.refused(t, "archiver publishing to CHAT_MSG", "chat.msg.r1")
	c2, cancel2 := short()
	if err := proc.js.DeleteStream(c2, bus.StreamMsg); err == nil {
		t.Error("a processor deleted CHAT_MSG")
	}
	cancel2()
	proc.refused(t, "processor deleting CHAT_MSG", "$JS.API.STREAM.DELETE.CHAT_MSG")
	select {
	case v := <-gw.denied:
		t.Errorf("gateway: unexpected violation %s", v)
	default:
	}
}
