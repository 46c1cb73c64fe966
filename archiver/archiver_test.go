package archiver_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/archiver"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/store/pebblestore"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

const partitions = 4

// env is an embedded NATS server with Parley's streams, a client and a
// Pebble store, all torn down when the test ends.
type env struct {
	nc *nats.Conn
	js jetstream.JetStream
	st *flakyStore
}

func setup(t *testing.T) *env {
	t.Helper()
	nc, js := bustest.WithStreams(t, partitions)
	st, err := pebblestore.Open(t.TempDir(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{nc: nc, js: js, st: &flakyStore{HistoryStore: st}}
}

// flakyStore fails every call while failing is set.
type flakyStore struct {
	store.HistoryStore
	failing  atomic.Bool
	failures atomic.Int64
}

var errStoreDown = errors.New("store down")

func (f *flakyStore) AppendMessages(ctx context.Context, msgs []*pb.ArchivedMessage) error {
	if f.failing.Load() {
		f.failures.Add(1)
		return errStoreDown
	}
	return f.HistoryStore.AppendMessages(ctx, msgs)
}

func (f *flakyStore) Messages(ctx context.Context, room string, from, to uint64, limit int, desc bool) ([]*pb.ArchivedMessage, error) {
	if f.failing.Load() {
		return nil, errStoreDown
	}
	return f.HistoryStore.Messages(ctx, room, from, to, limit, desc)
}

func logger(t *testing.T) *zap.Logger { return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)) }

func message(room string, seq uint64) *pb.Message {
	return &pb.Message{
		Room: room, Seq: seq, Sender: "u1", ClientMsgId: fmt.Sprint("c", seq),
		SentAt: 1_700_000_000_000 + int64(seq), Body: &pb.Body{Text: fmt.Sprint(room, " ", seq)},
	}
}

// publishRaw stores data on room's CHAT_MSG subject, as the processor does.
func publishRaw(t *testing.T, js jetstream.JetStream, room string, seq uint64, data []byte) {
	t.Helper()
	m := nats.NewMsg(bus.MsgSubject(room))
	m.Header.Set(bus.HeaderSeq, strconv.FormatUint(seq, 10))
	m.Data = data
	if _, err := js.PublishMsgAsync(m); err != nil {
		t.Fatal(err)
	}
}

// publish stores seqs from..to of each room, rooms interleaved, and waits
// until the stream has them all.
func publish(t *testing.T, js jetstream.JetStream, rooms []string, from, to uint64) {
	t.Helper()
	for seq := from; seq <= to; seq++ {
		for _, room := range rooms {
			data, err := proto.Marshal(message(room, seq))
			if err != nil {
				t.Fatal(err)
			}
			publishRaw(t, js, room, seq, data)
		}
	}
	waitPublished(t, js)
}

func waitPublished(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishing did not complete")
	}
}

// start runs a's Run until the returned stop is called (or the test ends);
// stop waits for Run to return nil.
func start(t *testing.T, a *archiver.Archiver) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var stopped atomic.Bool
	stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10s after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkHistory fails unless room's history is exactly seq 1..n, once
// each, with its stream sequences increasing.
func checkHistory(t *testing.T, st store.HistoryStore, room string, n uint64) {
	t.Helper()
	ctx := context.Background()
	got, err := st.Messages(ctx, room, 0, 0, int(n)+10, false)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(got)) != n {
		t.Fatalf("room %s holds %d messages, want %d", room, len(got), n)
	}
	var lastStream uint64
	for i, am := range got {
		if want := message(room, uint64(i+1)); !proto.Equal(am.Message, want) {
			t.Fatalf("room %s message %d = %v, want %v", room, i, am.Message, want)
		}
		if am.StreamSeq <= lastStream {
			t.Fatalf("room %s seq %d at stream seq %d, after %d", room, i+1, am.StreamSeq, lastStream)
		}
		lastStream = am.StreamSeq
	}
	if h, err := st.HistoryHead(ctx, room); err != nil || h != n {
		t.Fatalf("head of %s = %d, %v; want %d", room, h, err, n)
	}
}

// waitSettled waits until the durable has nothing pending or unacked.
func waitSettled(t *testing.T, js jetstream.JetStream, durable string) {
	t.Helper()
	waitFor(t, 10*time.Second, "every message to be acked", func() bool {
		info, err := consumerInfo(js, durable)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

func consumerInfo(js jetstream.JetStream, durable string) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(context.Background(), bus.StreamMsg, durable)
	if err != nil {
		return nil, err
	}
	return c.Info(context.Background())
}

var rooms = []string{"r-alpha", "r-beta", "r-gamma"}

// Every message of every room lands once; messages that are not room
// messages are terminated instead of blocking the stream.
func TestArchive(t *testing.T) {
	e := setup(t)
	publishRaw(t, e.js, "r-junk", 1, []byte("not a protobuf"))
	wrongRoom, _ := proto.Marshal(message("r-other", 1))
	publishRaw(t, e.js, "r-junk", 1, wrongRoom)
	const n = 1000
	publish(t, e.js, rooms, 1, n)

	a := archiver.New(e.js, e.st, logger(t), archiver.Config{})
	begin := time.Now()
	start(t, a)
	waitFor(t, 30*time.Second, "3,000 archived messages", func() bool { return a.Archived() >= uint64(len(rooms)*n) })
	t.Logf("archived %d messages in %v", a.Archived(), time.Since(begin))
	for _, room := range rooms {
		checkHistory(t, e.st, room, n)
	}
	for _, room := range []string{"r-junk", "r-other"} {
		if h, _ := e.st.HistoryHead(context.Background(), room); h != 0 {
			t.Fatalf("a bad message reached the history of %s", room)
		}
	}
	waitSettled(t, e.js, "archiver")
	if got := a.Archived(); got != uint64(len(rooms)*n) {
		t.Fatalf("Archived() = %d, want %d", got, len(rooms)*n)
	}
}

// An archiver stopped mid-stream hands over to the next one on the same
// durable with nothing lost or duplicated. What it had taken it finishes
// before Run returns; messages still in flight to it when it stopped are
// redelivered after the ack wait.
func TestRestart(t *testing.T) {
	e := setup(t)
	const n = 1000
	publish(t, e.js, rooms, 1, n)
	cfg := archiver.Config{BatchSize: 50}
	first := archiver.New(e.js, e.st, logger(t), cfg)
	stop := start(t, first)
	waitFor(t, 30*time.Second, "600 archived messages", func() bool { return first.Archived() >= 600 })
	stop()
	if first.Archived() >= uint64(len(rooms)*n) {
		t.Fatalf("the first archiver finished everything (%d) before it was stopped", first.Archived())
	}
	t.Logf("first archiver stopped after %d messages", first.Archived())

	publish(t, e.js, rooms, n+1, n+200) // more arrive while none runs
	second := archiver.New(e.js, e.st, logger(t), cfg)
	start(t, second)
	// Beyond the 30s ack wait, for anything in flight at the stop.
	waitFor(t, 60*time.Second, "the rest archived", func() bool {
		for _, room := range rooms {
			if h, _ := e.st.HistoryHead(context.Background(), room); h != n+200 {
				return false
			}
		}
		return true
	})
	for _, room := range rooms {
		checkHistory(t, e.st, room, n+200)
	}
	waitSettled(t, e.js, "archiver")
	t.Logf("second archiver wrote %d messages", second.Archived())
}

// Instances sharing a durable split the work and together archive
// everything.
func TestSharedDurable(t *testing.T) {
	e := setup(t)
	const n = 1000
	cfg := archiver.Config{Durable: "shared", BatchSize: 100}
	a := archiver.New(e.js, e.st, logger(t), cfg)
	b := archiver.New(e.js, e.st, logger(t), cfg)
	start(t, a)
	start(t, b)
	publish(t, e.js, rooms, 1, n)
	waitFor(t, 30*time.Second, "everything archived", func() bool { return a.Archived()+b.Archived() >= uint64(len(rooms)*n) })
	for _, room := range rooms {
		checkHistory(t, e.st, room, n)
	}
	waitSettled(t, e.js, "shared")
	t.Logf("split: %d + %d", a.Archived(), b.Archived())
}

// While the store fails nothing is acked and writes are retried; an
// archiver stopped while failing nacks what it holds, so the next one gets
// it at once.
func TestWriteFailures(t *testing.T) {
	e := setup(t)
	room := []string{"r-flaky"}
	e.st.failing.Store(true)
	first := archiver.New(e.js, e.st, logger(t), archiver.Config{})
	stopFirst := start(t, first)
	publish(t, e.js, room, 1, 10)
	waitFor(t, 10*time.Second, "retried writes", func() bool { return e.st.failures.Load() >= 3 })
	info, err := consumerInfo(e.js, "archiver")
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 10 || info.NumPending != 0 {
		t.Fatalf("while failing: %d unacked, %d pending; want 10, 0", info.NumAckPending, info.NumPending)
	}
	e.st.failing.Store(false)
	waitFor(t, 10*time.Second, "the retry to succeed", func() bool { return first.Archived() == 10 })
	checkHistory(t, e.st, room[0], 10)
	waitSettled(t, e.js, "archiver")

	e.st.failing.Store(true)
	failures := e.st.failures.Load()
	publish(t, e.js, room, 11, 20)
	waitFor(t, 10*time.Second, "failing writes", func() bool { return e.st.failures.Load() > failures })
	stopped := time.Now()
	stopFirst()
	if d := time.Since(stopped); d > 5*time.Second {
		t.Fatalf("Run took %v to return while the store was failing", d)
	}
	e.st.failing.Store(false)
	second := archiver.New(e.js, e.st, logger(t), archiver.Config{})
	start(t, second)
	waitFor(t, 10*time.Second, "the nacked batch archived", func() bool { return second.Archived() == 10 })
	checkHistory(t, e.st, room[0], 20)
}

// A consumer deleted under a running archiver is recreated; it starts over
// from the beginning of the stream, which idempotent writes absorb.
func TestConsumerDeleted(t *testing.T) {
	e := setup(t)
	room := []string{"r-del"}
	a := archiver.New(e.js, e.st, logger(t), archiver.Config{})
	start(t, a)
	publish(t, e.js, room, 1, 100)
	waitFor(t, 10*time.Second, "the first 100 archived", func() bool { return a.Archived() == 100 })
	if err := e.js.DeleteConsumer(context.Background(), bus.StreamMsg, "archiver"); err != nil {
		t.Fatal(err)
	}
	publish(t, e.js, room, 101, 200)
	waitFor(t, 10*time.Second, "everything archived again", func() bool { return a.Archived() >= 300 })
	checkHistory(t, e.st, room[0], 200)
	waitSettled(t, e.js, "archiver")
}

// Without CHAT_MSG, Run fails at once instead of spinning.
func TestRunWithoutStream(t *testing.T) {
	e := setup(t)
	if err := e.js.DeleteStream(context.Background(), bus.StreamMsg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := archiver.New(e.js, e.st, logger(t), archiver.Config{}).Run(ctx); err == nil {
		t.Fatal("Run without a stream returned nil")
	}
}
