package scenario

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/verify"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// series records, for each second from t0, 20 messages sent then with
// the latency lat(second).
func series(t0 int64, secs int, lat func(sec int) time.Duration) *metrics.Series {
	s := metrics.NewSeries(time.Second)
	for i := range secs {
		for range 20 {
			s.Record(time.Unix(t0+int64(i), 0), lat(i))
		}
	}
	return s
}

func TestFaultLatencies(t *testing.T) {
	const t0 = 1_000_000
	at := func(sec int) time.Time { return time.Unix(t0+int64(sec), 0) }
	// Load for 30 s; the fault from second 10 to 13; p99 before it 8 ms
	// (one slow second).
	run := FaultRun{Start: at(10).Add(300 * time.Millisecond), Lifted: at(13).Add(200 * time.Millisecond)}
	healthy := func(sec int) time.Duration {
		if sec == 4 {
			return 8 * time.Millisecond
		}
		return 5 * time.Millisecond
	}
	for _, tc := range []struct {
		name        string
		badUntil    int // seconds 10..badUntil-1 slow
		lateSpike   int // a slow second after recovery, 0 for none
		recovered   time.Duration
		unrecovered bool
	}{
		{name: "recovers", badUntil: 16, recovered: at(16).Sub(run.Start)},
		{name: "spike later", badUntil: 12, lateSpike: 20, recovered: at(21).Sub(run.Start)},
		{name: "never", badUntil: 30, recovered: at(29).Sub(run.Start), unrecovered: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := series(t0, 30, func(sec int) time.Duration {
				if (sec >= 10 && sec < tc.badUntil) || (tc.lateSpike > 0 && sec == tc.lateSpike) {
					return 2 * time.Second
				}
				return healthy(sec)
			})
			fl := faultLatencies(s, at(0).Add(-100*time.Millisecond), at(29).Add(500*time.Millisecond), run, run.Start)
			if fl.Threshold < 16*time.Millisecond || fl.Threshold > 17*time.Millisecond {
				t.Errorf("threshold %v, want twice the p99 before the fault, 16 ms", fl.Threshold)
			}
			if fl.Before.P99 > 9*time.Millisecond || fl.During.P99 < time.Second {
				t.Errorf("p99 before %v, during %v", fl.Before.P99, fl.During.P99)
			}
			if fl.Recovered != tc.recovered || fl.Unrecovered != tc.unrecovered {
				t.Errorf("recovered %v (unrecovered %v), want %v (%v)", fl.Recovered, fl.Unrecovered, tc.recovered, tc.unrecovered)
			}
		})
	}
	// A fault nothing felt.
	s := series(t0, 30, healthy)
	if fl := faultLatencies(s, at(0), at(29), run, run.Start); fl.Recovered != 0 || fl.Unrecovered {
		t.Errorf("no impact: recovered %v, unrecovered %v", fl.Recovered, fl.Unrecovered)
	}
}

// archived returns messages with the given seqs, each from alice with
// client_msg_id m<seq> unless ids says otherwise.
func archived(seqs []uint64, ids map[uint64]string) []*pb.Message {
	var out []*pb.Message
	for _, s := range seqs {
		id, ok := ids[s]
		if !ok {
			id = "m" + strconv.FormatUint(s, 10)
		}
		out = append(out, &pb.Message{Room: "r", Seq: s, Sender: "alice", ClientMsgId: id})
	}
	return out
}

func TestArchiveRoom(t *testing.T) {
	dense := []uint64{1, 2, 3, 4, 5}
	for _, tc := range []struct {
		name    string
		msgs    []*pb.Message
		head    uint64 // CHAT_MSG's
		summary verify.RoomSummary
		ok      bool
		check   func(*ArchiveCheck) bool
	}{
		{name: "complete", msgs: archived(dense, nil), head: 5, summary: verify.RoomSummary{Acked: 5, MaxAcked: 5}, ok: true,
			check: func(a *ArchiveCheck) bool { return a.Archived == 5 && len(a.Problems) == 0 }},
		{name: "membership event without id", msgs: archived(dense, map[uint64]string{1: ""}), head: 5,
			summary: verify.RoomSummary{Acked: 4, MaxAcked: 5}, ok: true},
		{name: "gap", msgs: archived([]uint64{1, 2, 4, 5}, nil), head: 5, summary: verify.RoomSummary{Acked: 4, MaxAcked: 5},
			check: func(a *ArchiveCheck) bool { return a.Missing == 1 }},
		{name: "behind CHAT_MSG", msgs: archived([]uint64{1, 2, 3}, nil), head: 5, summary: verify.RoomSummary{Acked: 3, MaxAcked: 3},
			check: func(a *ArchiveCheck) bool { return a.HeadBehind == 1 && a.Missing == 2 }},
		{name: "acked above the head", msgs: archived(dense, nil), head: 5, summary: verify.RoomSummary{Acked: 5, MaxAcked: 6},
			check: func(a *ArchiveCheck) bool { return a.BelowAcked == 1 }},
		{name: "stored twice", msgs: archived(dense, map[uint64]string{4: "m2"}), head: 5, summary: verify.RoomSummary{Acked: 4, MaxAcked: 5},
			check: func(a *ArchiveCheck) bool { return a.Twice == 1 }},
		{name: "fewer than acked", msgs: archived(dense, nil), head: 5, summary: verify.RoomSummary{Acked: 6, MaxAcked: 5},
			check: func(a *ArchiveCheck) bool { return a.Short == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &ArchiveCheck{Rooms: 1}
			tc.summary.Room = "r"
			if a.room(tc.summary, tc.head, tc.msgs) {
				a.Complete++
			}
			if a.OK() != tc.ok || (tc.check != nil && !tc.check(a)) {
				t.Errorf("OK %v, want %v: %+v", a.OK(), tc.ok, a)
			}
		})
	}
}

func TestParseFaults(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "names"), []byte("nats-0\nnats-1\ncassandra\nprocessor-1\narchiver-1\ngateway-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.env"), []byte("# c\nCLUSTER_SCRIPT=/x/cluster.sh\nCLUSTER_BENCH_FLAGS=\"--url a\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl, err := openCluster(dir, "")
	if err != nil || ctl.script != "/x/cluster.sh" {
		t.Fatalf("openCluster: %+v, %v", ctl, err)
	}
	holds := map[string]time.Duration{faultKill: time.Second, faultPause: 2 * time.Second, faultStore: 3 * time.Second}
	fs, err := parseFaults("kill:processor-1, pause:nats-leader,store,kill:nats-follower", holds, time.Second, ctl)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fs {
		names = append(names, f.Name())
	}
	if got, want := strings.Join(names, "; "), "kill -9 processor-1; pause nats-leader 2s; store outage 3s; kill -9 nats-follower"; got != want {
		t.Errorf("faults %q, want %q", got, want)
	}
	for _, bad := range []string{"kill:processor-9", "kill", "store:cassandra", "crash:gateway-1", ""} {
		if _, err := parseFaults(bad, holds, time.Second, ctl); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestArchiverCatchUp(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	run := FaultRun{Start: at(3), Lifted: at(5)}
	pts := []LagPoint{{at(0), 10}, {at(1), 30}, {at(2), 20}, {at(3), 50}, {at(4), -1}, {at(5), 400}, {at(6), 90}, {at(7), 25}, {at(8), 5}}
	peak, after, ok := archiverCatchUp(pts, run, 0)
	if peak != 400 || after != 2*time.Second || !ok {
		t.Errorf("peak %d, caught up %v (%v), want 400, 2s", peak, after, ok)
	}
	// Still behind at the end.
	if _, _, ok := archiverCatchUp(pts[:7], run, 0); ok {
		t.Error("caught up while the backlog stayed above 30")
	}
	// Within a second's messages (100) counts.
	if _, after, ok := archiverCatchUp(pts, run, 100); !ok || after != time.Second {
		t.Errorf("with slack: caught up %v (%v), want 1s", after, ok)
	}
}
