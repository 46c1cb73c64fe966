package scenario

import (
	"testing"
	"time"
)

func TestSplitTraffic(t *testing.T) {
	rooms := []string{"r0", "r1", "r2"}
	senders := []Slot{{0, 0}, {1, 0}, {2, 1}, {3, 1}, {4, 2}} // clients 0..4 over 2 workers: 0,2,4 and 1,3
	st := Step{Duration: time.Second, Rate: 100, Senders: senders, HistoryRate: 10, Readers: []Slot{{1, 0}}}
	got := splitTraffic(st, 2, rooms, 50)
	if len(got[0].Senders) != 3 || len(got[1].Senders) != 2 {
		t.Fatalf("senders split %d/%d, want 3/2", len(got[0].Senders), len(got[1].Senders))
	}
	if got[0].Rate != 60 || got[1].Rate != 40 || got[0].HistoryRate != 0 || got[1].HistoryRate != 10 {
		t.Fatalf("rates %v/%v, history %v/%v", got[0].Rate, got[1].Rate, got[0].HistoryRate, got[1].HistoryRate)
	}
	// Worker 1's clients 1 and 3 are its local clients 0 and 1.
	if s := got[1].Senders[1]; s.Client != 1 || s.Room != "r1" {
		t.Fatalf("worker 1's second sender %+v, want local client 1 in r1", s)
	}
	if got[0].MaxInFlight != 50 || got[0].Duration != time.Second {
		t.Fatalf("traffic %+v", got[0])
	}

	// A limited step: message j goes to sender j mod 5, and a worker with
	// no message of its own must not send at all (0 means no limit).
	st.Messages = 3
	got = splitTraffic(st, 2, rooms, 50)
	if got[0].Messages != 2 || got[1].Messages != 1 {
		t.Fatalf("messages %d/%d, want 2/1", got[0].Messages, got[1].Messages)
	}
	st.Senders = senders[:1]
	got = splitTraffic(st, 2, rooms, 50)
	if got[0].Messages != 3 || got[1].Senders != nil || got[1].Rate != 0 {
		t.Fatalf("one sender: %+v / %+v", got[0], got[1])
	}
}

func TestConnectDesign(t *testing.T) {
	d := design(t, "connect", "--clients", "100", "--rooms-per-client", "3", "--room-size", "30")
	members := d.rooms()
	if len(members) != 10 {
		t.Fatalf("%d rooms, want 100·3/30 = 10", len(members))
	}
	for r, m := range members {
		if len(m) != 30 {
			t.Fatalf("room %d has %d members", r, len(m))
		}
	}
	for i, c := range d.Clients {
		if len(c.Rooms) != 3 || c.Rooms[0] == c.Rooms[1] || c.Rooms[1] == c.Rooms[2] || c.Rooms[0] == c.Rooms[2] {
			t.Fatalf("client %d in rooms %v", i, c.Rooms)
		}
	}
}

func TestSourceAddresses(t *testing.T) {
	for _, c := range []struct {
		client int
		want   string
	}{{0, "127.0.0.2"}, {clientsPerSource - 1, "127.0.0.2"}, {clientsPerSource, "127.0.0.3"}, {250 * clientsPerSource, "127.0.1.2"}} {
		if got := sourceAddr(c.client); got != c.want {
			t.Errorf("sourceAddr(%d) = %s, want %s", c.client, got, c.want)
		}
	}
}
