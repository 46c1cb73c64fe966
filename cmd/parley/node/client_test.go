package node_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/pkg/protocol"
)

// Many goroutines send on one client connection at once: every frame
// reaches the gateway whole, so every send is acknowledged, each with its
// own seq, and the connection stays open.
func TestConcurrentSendsOnOneConnection(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	room := createRoom(t, n, "alice")
	alice := dial(t, n, "alice", protocol.SubprotocolProto)
	const senders, perSender = 8, 500
	seqs := make([][]uint64, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for j := range perSender {
				ack, err := alice.Send(ctxT(t, 30*time.Second), room, fmt.Sprintf("%d-%d", i, j), fmt.Sprintf("message %d of sender %d", j, i))
				if err != nil {
					t.Errorf("sender %d message %d: %v", i, j, err)
					return
				}
				seqs[i] = append(seqs[i], ack.Seq)
			}
		})
	}
	wg.Wait()
	select {
	case <-alice.Done():
		t.Fatalf("connection closed (code %d): %v", alice.CloseCode(), alice.Err())
	default:
	}
	all := slices.Sorted(slices.Values(slices.Concat(seqs...)))
	if len(all) != senders*perSender {
		t.Fatalf("%d of %d sends acknowledged", len(all), senders*perSender)
	}
	for i, seq := range all {
		if seq != uint64(i+1) {
			t.Fatalf("acknowledged seqs are not 1..%d: %d at %d", len(all), seq, i)
		}
	}
}
