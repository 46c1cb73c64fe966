package archiver_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/archiver"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/store/scyllastore/scyllatest"
)

// While messages keep arriving, archivers on a Cassandra store are stopped
// and started again and again: gracefully (ctx cancelled, so an archiver
// finishes what it holds) and abruptly (its connection cut first, so what
// it holds goes unacked, written or not, and comes back after the ack
// wait). In the end every room's history is exactly seq 1..N, once each.
func TestRestartUnderLoadOnScylla(t *testing.T) {
	st := scyllatest.Open(t, scyllatest.Keyspace(t))
	nc, js := bustest.WithStreams(t, partitions)
	const perRoom = 2000
	cfg := archiver.Config{BatchSize: 50}

	var produceErr error
	produced := make(chan struct{})
	go func() { defer close(produced); produceErr = produce(js, perRoom) }()
	producing := func() bool {
		select {
		case <-produced:
			return false
		default:
			return true
		}
	}

	restarts, abrupt := 0, 0
	for more := true; more; restarts++ {
		anc, err := nats.Connect(nc.ConnectedUrl())
		if err != nil {
			t.Fatal(err)
		}
		ajs, _ := jetstream.New(anc)
		a := archiver.New(ajs, st, logger(t), cfg)
		stop := start(t, a)
		// Stop it mid-stream: once it has archived something, at a random
		// point of whatever batch it is on.
		waitFor(t, 10*time.Second, "the archiver to get going", func() bool { return a.Archived() > 0 || !producing() })
		time.Sleep(rand.N(300 * time.Millisecond))
		more = producing()
		if restarts%2 == 1 {
			anc.Close()
			abrupt++
		}
		stop()
		anc.Close()
	}
	if produceErr != nil {
		t.Fatalf("producing: %v", produceErr)
	}
	if abrupt < 2 {
		t.Fatalf("only %d restarts (%d abrupt) while producing: the test proves little", restarts, abrupt)
	}
	t.Logf("%d restarts, %d of them abrupt", restarts, abrupt)

	start(t, archiver.New(js, st, logger(t), cfg))
	// Until the ack wait (30s) brings back what the abrupt stops held,
	// histories have holes below their heads: wait for every ack instead.
	waitFor(t, 60*time.Second, "every message archived and acked", func() bool {
		info, err := consumerInfo(js, "archiver")
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	for _, room := range rooms {
		checkHistory(t, st, room, perRoom)
	}
}

// produce publishes seqs 1..n of every room, rooms interleaved, at a steady
// pace of a round every millisecond or so: a stream that keeps coming while
// archivers restart. It reports the first error.
func produce(js jetstream.JetStream, n uint64) error {
	for seq := uint64(1); seq <= n; seq++ {
		for _, room := range rooms {
			data, err := proto.Marshal(message(room, seq))
			if err != nil {
				return err
			}
			if _, err := js.Publish(context.Background(), bus.MsgSubject(room), data); err != nil {
				return err
			}
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}
