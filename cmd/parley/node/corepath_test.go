package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/history"
	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/processor"
)

// Five senders write 1,000 messages each into one room at once; every
// member sees all 5,000 once, in the same dense order, and the history
// store ends up with each exactly once.
func TestOrderAcrossConcurrentSenders(t *testing.T) {
	forEachBackend(t, testOrderAcrossConcurrentSenders)
}

func testOrderAcrossConcurrentSenders(t *testing.T, b backend) {
	n := startNode(t, testConfigOn(t, b, t.TempDir()))
	const senders, perSender = 5, 1000
	users := []string{"s0", "s1", "s2", "s3", "s4", "watcher-json", "watcher-proto"}
	room := createRoom(t, n, users[0], users[1:]...)
	clients := make([]*client.Client, len(users))
	for i, u := range users {
		sub := subprotocols[i%2]
		if u == "watcher-json" {
			sub = subprotocols[1]
		}
		clients[i] = dial(t, n, u, sub)
		if _, err := clients[i].Subscribe(ctxT(t, 10*time.Second), room, nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < senders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perSender; j++ {
				if _, err := clients[i].Send(context.Background(), room, fmt.Sprintf("%d-%d", i, j), "hello"); err != nil {
					t.Errorf("sender %d message %d: %v", i, j, err)
					return
				}
			}
		}()
	}
	received := make([][]*pb.Message, len(clients))
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			received[i] = collect(t, c, senders*perSender, 2*time.Minute)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, msgs := range received {
		checkDense(t, msgs, 1)
		seen := make(map[string]bool)
		lastPerSender := make(map[string]int)
		for k, m := range msgs {
			if m.ClientMsgId != received[0][k].ClientMsgId {
				t.Fatalf("%s sees %s at seq %d, %s sees %s", users[i], m.ClientMsgId, m.Seq, users[0], received[0][k].ClientMsgId)
			}
			if seen[m.ClientMsgId] {
				t.Fatalf("%s got %s twice", users[i], m.ClientMsgId)
			}
			seen[m.ClientMsgId] = true
			// Each sender waited for its ack, so its messages keep its order.
			var s, j int
			fmt.Sscanf(m.ClientMsgId, "%d-%d", &s, &j)
			if prev, ok := lastPerSender[m.Sender]; ok && j != prev+1 {
				t.Fatalf("%s: sender %s message %d follows %d", users[i], m.Sender, j, prev)
			}
			lastPerSender[m.Sender] = j
		}
	}
	expectQuiet(t, clients[0], 200*time.Millisecond)

	// Archive: the history store holds 1..5000, each exactly once.
	waitArchived(t, n, room, senders*perSender)
	stored, err := n.Store().Messages(context.Background(), room, 1, 0, 10000, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != senders*perSender {
		t.Fatalf("history holds %d messages, want %d", len(stored), senders*perSender)
	}
	for i, am := range stored {
		if am.Message.Seq != uint64(i+1) || am.Message.ClientMsgId != received[0][i].ClientMsgId {
			t.Fatalf("history[%d] = seq %d %s, want seq %d %s", i, am.Message.Seq, am.Message.ClientMsgId, i+1, received[0][i].ClientMsgId)
		}
	}
}

// Resending a client_msg_id, on the same connection, after a reconnect, or
// from two connections at once, yields one message.
func TestDedupOfClientMessageIDs(t *testing.T) { forEachBackend(t, testDedupOfClientMessageIDs) }

func testDedupOfClientMessageIDs(t *testing.T, b backend) {
	n := startNode(t, testConfigOn(t, b, t.TempDir()))
	room := createRoom(t, n, "alice", "bob")
	bob := dial(t, n, "bob", subprotocols[0])
	if _, err := bob.Subscribe(ctxT(t, 5*time.Second), room, nil); err != nil {
		t.Fatal(err)
	}
	alice := dial(t, n, "alice", subprotocols[1])
	first, err := alice.Send(ctxT(t, 10*time.Second), room, "same-id", "once")
	if err != nil {
		t.Fatal(err)
	}
	again, err := alice.Send(ctxT(t, 10*time.Second), room, "same-id", "once")
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !again.Duplicate || again.Seq != first.Seq {
		t.Fatalf("first %v, resend %v: want the same seq, the resend marked duplicate", first, again)
	}
	alice.Close()
	alice2 := dial(t, n, "alice", subprotocols[0])
	after, err := alice2.Send(ctxT(t, 10*time.Second), room, "same-id", "once")
	if err != nil {
		t.Fatal(err)
	}
	if after.Seq != first.Seq || !after.Duplicate {
		t.Fatalf("resend after reconnect: %v, want duplicate of seq %d", after, first.Seq)
	}
	// Two connections racing with one id.
	alice3 := dial(t, n, "alice", subprotocols[1])
	var wg sync.WaitGroup
	acks := make([]*pb.SendAck, 2)
	errs := make([]error, 2)
	for i, c := range []*client.Client{alice2, alice3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acks[i], errs[i] = c.Send(ctxT(t, 10*time.Second), room, "raced", "race")
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || acks[0].Seq != acks[1].Seq || acks[0].Duplicate == acks[1].Duplicate {
		t.Fatalf("raced sends: %v %v (%v), want one seq, one duplicate", acks[0], acks[1], errs)
	}
	msgs := collect(t, bob, 2, 10*time.Second)
	checkDense(t, msgs, 1)
	expectQuiet(t, bob, 300*time.Millisecond)
}

// A member that was away resumes from its last seq: exactly the missed
// messages, then live ones, with no gap or duplicate.
func TestResumeAfterDisconnect(t *testing.T) { forEachBackend(t, testResumeAfterDisconnect) }

func testResumeAfterDisconnect(t *testing.T, b backend) {
	for _, sub := range subprotocols {
		t.Run(sub, func(t *testing.T) {
			n := startNode(t, testConfigOn(t, b, t.TempDir()))
			room := createRoom(t, n, "alice", "bob")
			alice := dial(t, n, "alice", sub)
			bob := dial(t, n, "bob", sub)
			if _, err := bob.Subscribe(ctxT(t, 5*time.Second), room, nil); err != nil {
				t.Fatal(err)
			}
			sendN(t, alice, room, "before", 20)
			last := collect(t, bob, 20, 10*time.Second)[19].Seq
			bob.Abort()

			sendN(t, alice, room, "away", 500)
			bob = dial(t, n, "bob", sub)
			subd, err := bob.Subscribe(ctxT(t, 5*time.Second), room, &last)
			if err != nil {
				t.Fatal(err)
			}
			if subd.HeadSeq != 520 {
				t.Fatalf("head %d, want 520", subd.HeadSeq)
			}
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				for i := 0; i < 30; i++ {
					if _, err := alice.Send(context.Background(), room, fmt.Sprintf("live-%d", i), "live"); err != nil {
						t.Errorf("live send %d: %v", i, err)
						return
					}
				}
			}()
			msgs := collect(t, bob, 530, 30*time.Second)
			<-sent
			checkDense(t, msgs, last+1)
			if msgs[0].ClientMsgId != "away-0" || msgs[500].ClientMsgId != "live-0" {
				t.Fatalf("resume starts with %s and goes live at %s", msgs[0].ClientMsgId, msgs[500].ClientMsgId)
			}
			expectQuiet(t, bob, 200*time.Millisecond)
		})
	}
}

// A gap older than CHAT_MSG still holds is filled from the history store,
// the rest from the stream.
func TestResumeOlderThanStream(t *testing.T) { forEachBackend(t, testResumeOlderThanStream) }

func testResumeOlderThanStream(t *testing.T, b backend) {
	n := startNode(t, testConfigOn(t, b, t.TempDir()))
	room := createRoom(t, n, "alice", "bob")
	alice := dial(t, n, "alice", subprotocols[0])
	sendN(t, alice, room, "old", 500)
	waitArchived(t, n, room, 500)

	// Drop all but the newest 100 messages from the stream, as its age
	// limit would.
	nc, err := nats.Connect(n.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctxT(t, 5*time.Second), bus.StreamMsg)
	if err != nil {
		t.Fatal(err)
	}
	subject := bus.MsgSubject(room)
	if err := stream.Purge(ctxT(t, 5*time.Second), jetstream.WithPurgeSubject(subject), jetstream.WithPurgeKeep(100)); err != nil {
		t.Fatal(err)
	}
	if first, err := stream.GetMsg(ctxT(t, 5*time.Second), 1, jetstream.WithGetMsgSubject(subject)); err != nil || first.Header.Get(bus.HeaderSeq) != "401" {
		t.Fatalf("after purge the stream starts at seq %s (%v), want 401", first.Header.Get(bus.HeaderSeq), err)
	}

	bob := dial(t, n, "bob", subprotocols[1])
	zero := uint64(0)
	if _, err := bob.Subscribe(ctxT(t, 5*time.Second), room, &zero); err != nil {
		t.Fatal(err)
	}
	msgs := collect(t, bob, 500, 30*time.Second)
	checkDense(t, msgs, 1)
	sendN(t, alice, room, "new", 5)
	checkDense(t, collect(t, bob, 5, 10*time.Second), 501)

	// History pages cross the same boundary.
	before := uint64(450)
	page, err := bob.History(ctxT(t, 5*time.Second), &pb.HistoryRequest{Room: room, BeforeSeq: &before, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 100 || page.Messages[0].Seq != 350 || !page.HasMore {
		t.Fatalf("history before 450: %d messages from %d, has_more %v", len(page.Messages), page.Messages[0].GetSeq(), page.HasMore)
	}
}

// Messages not yet archived are served from CHAT_MSG: here no archiver runs
// at all, so resume and history come from the stream alone.
func TestResumeBeforeArchive(t *testing.T) { forEachBackend(t, testResumeBeforeArchive) }

func testResumeBeforeArchive(t *testing.T, b backend) {
	cfg := testConfigOn(t, b, t.TempDir())
	cfg.Roles.Archiver = false
	n := startNode(t, cfg)
	stopHistory := serveHistory(t, n)
	defer stopHistory()
	room := createRoom(t, n, "alice", "bob")
	alice := dial(t, n, "alice", subprotocols[0])
	sendN(t, alice, room, "m", 300)
	bob := dial(t, n, "bob", subprotocols[0])
	after := uint64(10)
	if _, err := bob.Subscribe(ctxT(t, 5*time.Second), room, &after); err != nil {
		t.Fatal(err)
	}
	checkDense(t, collect(t, bob, 290, 20*time.Second), 11)
	page, err := bob.History(ctxT(t, 5*time.Second), &pb.HistoryRequest{Room: room, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 50 || page.Messages[49].Seq != 300 {
		t.Fatalf("newest history page: %d messages ending at %d", len(page.Messages), page.Messages[len(page.Messages)-1].GetSeq())
	}
}

// Stopping and restarting a node on the same data dir keeps history and
// continues seq.
func TestRestartKeepsHistoryAndSeq(t *testing.T) { forEachBackend(t, testRestartKeepsHistoryAndSeq) }

func testRestartKeepsHistoryAndSeq(t *testing.T, b backend) {
	dir := t.TempDir()
	cfg := testConfigOn(t, b, dir)
	n := startNode(t, cfg)
	room := createRoom(t, n, "alice", "bob")
	alice := dial(t, n, "alice", subprotocols[0])
	sendN(t, alice, room, "first", 100)
	waitArchived(t, n, room, 100)
	n.Close()

	n = startNode(t, cfg)
	alice = dial(t, n, "alice", subprotocols[0])
	acks := sendN(t, alice, room, "second", 10)
	if acks[0].Seq != 101 {
		t.Fatalf("after restart seq continues at %d, want 101", acks[0].Seq)
	}
	zero := uint64(0)
	bob := dial(t, n, "bob", subprotocols[1])
	if _, err := bob.Subscribe(ctxT(t, 5*time.Second), room, &zero); err != nil {
		t.Fatal(err)
	}
	msgs := collect(t, bob, 110, 20*time.Second)
	checkDense(t, msgs, 1)
	if msgs[0].ClientMsgId != "first-0" || msgs[100].ClientMsgId != "second-0" {
		t.Fatalf("history after restart: %s .. %s", msgs[0].ClientMsgId, msgs[100].ClientMsgId)
	}
}

// Two processors share the partitions; the active one dies without
// warning mid-stream. Every acked message is sequenced exactly once.
func TestProcessorFailover(t *testing.T) { forEachBackend(t, testProcessorFailover) }

func testProcessorFailover(t *testing.T, b backend) {
	cfg := testConfigOn(t, b, t.TempDir())
	cfg.Roles.Processor = false
	n := startNode(t, cfg)
	type proc struct {
		p    *processor.Processor
		nc   *nats.Conn
		stop context.CancelFunc
		done chan struct{}
	}
	start := func(name string) *proc {
		nc, err := nats.Connect(n.NATSURL(), nats.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		p := processor.New(nc, js, n.Store(), zaptest.NewLogger(t).Named(name), processor.Config{
			Partitions: testPartitions, LeaseTTL: 5 * time.Second,
		})
		ctx, cancel := context.WithCancel(context.Background())
		pr := &proc{p: p, nc: nc, stop: cancel, done: make(chan struct{})}
		go func() { defer close(pr.done); _ = p.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-pr.done; nc.Close() })
		return pr
	}
	p1, p2 := start("p1"), start("p2")

	const rooms, senders, perSender = 4, 3, 300
	roomIDs := make([]string, rooms)
	for i := range roomIDs {
		roomIDs[i] = createRoom(t, n, "u0", "u1", "u2")
	}
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		c := dial(t, n, fmt.Sprintf("u%d", s), subprotocols[0])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perSender; j++ {
				room := roomIDs[j%rooms]
				if _, err := c.Send(ctxT(t, time.Minute), room, fmt.Sprintf("u%d-%d", s, j), "x"); err != nil {
					t.Errorf("send u%d-%d: %v", s, j, err)
					return
				}
			}
		}()
	}
	// Kill whichever processor is doing more work, abruptly: its
	// connection drops, nothing is acked or unpinned.
	for p1.p.Sequenced()+p2.p.Sequenced() < senders*perSender/3 {
		time.Sleep(5 * time.Millisecond)
	}
	victim := p1
	if p2.p.Sequenced() > p1.p.Sequenced() {
		victim = p2
	}
	victim.nc.Close()
	victim.stop()
	wg.Wait()
	if t.Failed() {
		return
	}
	// Each room holds 1..count densely, and every message sent is there
	// exactly once.
	seen := make(map[string]bool)
	perRoom := senders * perSender / rooms
	for _, room := range roomIDs {
		waitArchived(t, n, room, uint64(perRoom))
		stored, err := n.Store().Messages(context.Background(), room, 1, 0, 10*perRoom, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != perRoom {
			t.Fatalf("room %s holds %d messages, want %d", room, len(stored), perRoom)
		}
		for i, am := range stored {
			if am.Message.Seq != uint64(i+1) || seen[am.Message.ClientMsgId] {
				t.Fatalf("room %s: seq %d (%s) at position %d, seen before: %v", room, am.Message.Seq, am.Message.ClientMsgId, i, seen[am.Message.ClientMsgId])
			}
			seen[am.Message.ClientMsgId] = true
		}
	}
	if len(seen) != senders*perSender {
		t.Fatalf("%d distinct messages stored, want %d", len(seen), senders*perSender)
	}
}

// serveHistory runs the history service on its own connection.
func serveHistory(t *testing.T, n *node.Node) func() {
	nc, err := nats.Connect(n.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := history.Serve(nc, n.Store(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return func() { _ = svc.Stop(); nc.Close() }
}
