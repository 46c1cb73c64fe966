package runbook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/parley-chat/parley/deploy/internal/deploytest"
	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// TestBackupRestoreDrill runs the runbook's backup and restore procedure
// ("Restore drill on parley dev") on a real `parley dev` with the nats CLI:
// acknowledged messages, an online CHAT_MSG backup, a cold copy of the
// Pebble store, the data directory wiped, CHAT_MSG restored into a bare
// NATS server on the new data directory, the store put back. Afterwards
// every acknowledged message is in history, resending one is answered with
// its original seq, and each room's next message gets the next seq.
func TestBackupRestoreDrill(t *testing.T) {
	bin := deploytest.Parley(t, "PARLEY_BIN")
	natsCLI := deploytest.Tool(t, "PARLEY_NATS_CLI", "nats")
	dir := t.TempDir()
	data, backup := filepath.Join(dir, "data"), filepath.Join(dir, "backup")

	// 1. Messages, acknowledged.
	dev := startDrillDev(t, bin, data)
	acked := map[string][]*pb.SendAck{} // room → acks in send order
	c := dev.dial(t, "alice")
	rooms := []string{dev.createRoom(t, "alice", "bob"), dev.createRoom(t, "alice", "carol")}
	for i := range 30 {
		room := rooms[i%len(rooms)]
		ack, err := c.Send(t.Context(), room, fmt.Sprintf("m-%d", i), fmt.Sprintf("message %d", i))
		if err != nil {
			t.Fatal(err)
		}
		acked[room] = append(acked[room], ack)
	}
	c.Close()

	// 2. Backup: CHAT_MSG online, then the store once Parley has stopped.
	dev.nats(t, natsCLI, "backup", "stream", "CHAT_MSG", filepath.Join(backup, "CHAT_MSG"), "--no-progress")
	dev.nats(t, natsCLI, "backup", "validate", filepath.Join(backup, "CHAT_MSG"))
	dev.stop()
	copyDir(t, filepath.Join(data, "store"), filepath.Join(backup, "store"))

	// 3. Wipe.
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}

	// 4. Restore CHAT_MSG into a bare server on the new data directory,
	// then the store.
	port, _ := strconv.Atoi(deploytest.FreePort(t))
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: filepath.Join(data, "nats"), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("bare NATS server not ready")
	}
	bare := &drillDev{natsURL: ns.ClientURL()}
	bare.nats(t, natsCLI, "backup", "restore", "stream", filepath.Join(backup, "CHAT_MSG"), "--no-progress")
	ns.Shutdown()
	ns.WaitForShutdown()
	copyDir(t, filepath.Join(backup, "store"), filepath.Join(data, "store"))

	// 5. Parley on the restored data.
	dev = startDrillDev(t, bin, data)
	var info struct{ State struct{ Messages uint64 } }
	if err := json.Unmarshal(dev.nats(t, natsCLI, "stream", "info", "CHAT_MSG", "--json"), &info); err != nil || info.State.Messages != 30 {
		t.Errorf("restored CHAT_MSG holds %d messages (%v), want the 30 acknowledged", info.State.Messages, err)
	}
	c = dev.dial(t, "alice")
	defer c.Close()
	for room, acks := range acked {
		page, err := c.History(t.Context(), &pb.HistoryRequest{Room: room, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		stored := map[uint64]string{}
		for _, m := range page.Messages {
			stored[m.Seq] = m.ClientMsgId
		}
		for i, ack := range acks {
			if want := fmt.Sprintf("m-%d", ackIndex(i, room, rooms)); stored[ack.Seq] != want {
				t.Errorf("room %s seq %d: after restore %q, want the acknowledged %q", room, ack.Seq, stored[ack.Seq], want)
			}
		}
		last := acks[len(acks)-1].Seq
		// A resend within the dedup horizon keeps its seq ...
		again, err := c.Send(t.Context(), room, fmt.Sprintf("m-%d", ackIndex(len(acks)-1, room, rooms)), "resent")
		if err != nil || again.Seq != last {
			t.Errorf("room %s: resending the last message: seq %v, %v; want its original %d", room, seqOf(again), err, last)
		}
		// ... and a new message continues the room's seqs.
		next, err := c.Send(t.Context(), room, "after-restore", "new")
		if err != nil || next.Seq != last+1 {
			t.Errorf("room %s: first message after the restore got seq %v (%v), want %d", room, seqOf(next), err, last+1)
		}
	}
}

// TestNatsSubTranslate runs the runbook's live view of messages,
// `nats sub 'room.*.ev' --translate 'parley decode --subject {{Subject}}'`,
// and checks it prints a sent message as JSON.
func TestNatsSubTranslate(t *testing.T) {
	bin := deploytest.Parley(t, "PARLEY_BIN")
	natsCLI := deploytest.Tool(t, "PARLEY_NATS_CLI", "nats")
	dev := startDrillDev(t, bin, t.TempDir())
	room := dev.createRoom(t, "alice", "bob")
	c := dev.dial(t, "alice")
	defer c.Close()
	sub := exec.Command(natsCLI, "--server", dev.natsURL, "sub", "room.*.ev", "--count", "1", "--raw",
		"--translate", bin+" decode --subject {{Subject}}")
	var out bytes.Buffer
	sub.Stdout, sub.Stderr = &out, &out
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sub.Wait() }()
	// Send until the subscriber, once subscribed, has printed one.
	for i := 0; ; i++ {
		if _, err := c.Send(t.Context(), room, fmt.Sprintf("sub-%d", i), "hello"); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("nats sub: %v\n%s", err, out.String())
			}
			var m struct {
				Room, Sender string
				ClientMsgID  string `json:"client_msg_id"`
			}
			if err := json.Unmarshal(out.Bytes(), &m); err != nil || m.Room != room || m.Sender != "alice" || m.ClientMsgID == "" {
				t.Fatalf("nats sub --translate printed %q (%v), want the message as JSON", out.String(), err)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if i == 100 {
			sub.Process.Kill()
			t.Fatalf("nats sub printed nothing: %s", out.String())
		}
	}
}

// ackIndex is the send index of the i-th message sent to room (messages
// went to the rooms in turn).
func ackIndex(i int, room string, rooms []string) int {
	for r, id := range rooms {
		if id == room {
			return i*len(rooms) + r
		}
	}
	return -1
}

func seqOf(a *pb.SendAck) any {
	if a == nil {
		return nil
	}
	return a.Seq
}

type drillDev struct {
	httpAddr, natsURL string
	stop              func()
}

func startDrillDev(t *testing.T, bin, data string) *drillDev {
	t.Helper()
	args, ops := deploytest.DevFlags(t, data)
	d := &drillDev{}
	for i, a := range args {
		switch a {
		case "--http-addr":
			d.httpAddr = args[i+1]
		case "--nats-port":
			d.natsURL = "nats://127.0.0.1:" + args[i+1]
		}
	}
	_, d.stop = deploytest.Start(t, exec.Command(bin, args...))
	deploytest.WaitOK(t, "http://"+ops+"/readyz", 90*time.Second, nil)
	return d
}

// nats runs the nats CLI against this server and returns its output.
func (d *drillDev) nats(t *testing.T, cli string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(cli, append([]string{"--server", d.natsURL}, args...)...).Output()
	if err != nil {
		t.Fatalf("nats %v: %v\n%s%s", args, err, out, deploytest.Stderr(err))
	}
	return out
}

func (d *drillDev) post(t *testing.T, path, token string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+d.httpAddr+path, bytes.NewReader(b))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: HTTP %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func (d *drillDev) token(t *testing.T, user string) string {
	var r struct{ Token string }
	d.post(t, "/api/v1/dev/tokens", "", map[string]string{"user": user}, &r)
	return r.Token
}

func (d *drillDev) createRoom(t *testing.T, owner string, members ...string) string {
	var r struct{ ID string }
	d.post(t, "/api/v1/rooms", d.token(t, owner), map[string]any{"name": "drill", "members": members}, &r)
	return r.ID
}

func (d *drillDev) dial(t *testing.T, user string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+d.httpAddr+"/ws", client.Options{Token: d.token(t, user)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", from, to, err, out)
	}
}
