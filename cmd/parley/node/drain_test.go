package node_test

import (
	"net"
	"slices"
	"testing"
	"time"
)

// Closing a node drains its gateway: it stops accepting, then closes each
// client with 1001 "gateway draining, reconnect", spread over DrainTime so
// they do not all reconnect elsewhere at once.
func TestDrainSpreadsCloses(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Gateway.DrainTime = time.Second
	n := startNode(t, cfg)
	const clients = 20
	closedAt := make(chan time.Time, clients)
	for i := range clients {
		c := dial(t, n, "alice", subprotocols[i%2])
		go func() {
			<-c.Done()
			if code := c.CloseCode(); code != 1001 {
				t.Errorf("client %d: close code %d (%v)", i, code, c.Err())
			}
			closedAt <- time.Now()
		}()
	}
	addr := n.HTTPAddr()
	start := time.Now()
	go n.Close()
	var times []time.Duration
	for range clients {
		select {
		case at := <-closedAt:
			times = append(times, at.Sub(start))
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d clients closed", len(times), clients)
		}
		if len(times) == 1 {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Fatal("still accepting while draining")
			}
		}
	}
	slices.Sort(times)
	t.Logf("closes from %v to %v", times[0], times[len(times)-1])
	if spread := times[len(times)-1] - times[0]; spread < cfg.Gateway.DrainTime/2 {
		t.Fatalf("all clients closed within %v; want them spread over about %v", spread, cfg.Gateway.DrainTime)
	}
}
