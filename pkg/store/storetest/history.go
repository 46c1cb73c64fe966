package storetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// msg is the message seq of room; every field is set so a round trip that
// loses one shows.
func msg(room string, seq uint64) *pb.ArchivedMessage {
	return &pb.ArchivedMessage{
		Message: &pb.Message{
			Room: room, Seq: seq, Sender: "u-" + room, ClientMsgId: fmt.Sprint("c", seq),
			SentAt: 1_700_000_000_000 + int64(seq), Body: &pb.Body{Text: fmt.Sprint("hello ", room, " ", seq)},
		},
		StreamSeq: 1_000_000 + seq,
	}
}

// msgs returns room's messages from..to, shuffled: a backend must not
// depend on the order of a batch.
func msgs(room string, from, to uint64) []*pb.ArchivedMessage {
	var out []*pb.ArchivedMessage
	for seq := from; seq <= to; seq++ {
		out = append(out, msg(room, seq))
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func seqs(ms []*pb.ArchivedMessage) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.GetMessage().GetSeq()
	}
	return out
}

func appendMsgs(t *testing.T, st store.HistoryStore, ms []*pb.ArchivedMessage) {
	t.Helper()
	if err := st.AppendMessages(context.Background(), ms); err != nil {
		t.Fatalf("AppendMessages(%d): %v", len(ms), err)
	}
}

// appendInChunks writes ms in batches of n, as an archiver would.
func appendInChunks(t *testing.T, st store.HistoryStore, ms []*pb.ArchivedMessage, n int) {
	t.Helper()
	for chunk := range slices.Chunk(ms, n) {
		appendMsgs(t, st, chunk)
	}
}

func read(t *testing.T, st store.HistoryStore, room string, from, to uint64, limit int, desc bool) []*pb.ArchivedMessage {
	t.Helper()
	got, err := st.Messages(context.Background(), room, from, to, limit, desc)
	if err != nil {
		t.Fatalf("Messages(%s, %d, %d, %d, %v): %v", room, from, to, limit, desc, err)
	}
	return got
}

func head(t *testing.T, st store.HistoryStore, room string) uint64 {
	t.Helper()
	h, err := st.HistoryHead(context.Background(), room)
	if err != nil {
		t.Fatalf("HistoryHead(%s): %v", room, err)
	}
	return h
}

// checkRun fails unless got is exactly n messages of room starting at
// first, counting down when desc, each intact.
func checkRun(t *testing.T, got []*pb.ArchivedMessage, room string, first uint64, n int, desc bool) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d messages %v, want %d from %d (desc %v)", len(got), seqs(got), n, first, desc)
	}
	for i, m := range got {
		want := first + uint64(i)
		if desc {
			want = first - uint64(i)
		}
		if exp := msg(room, want); !proto.Equal(m, exp) {
			t.Fatalf("message %d = %v, want %v", i, m, exp)
		}
	}
}

func testHistoryEmpty(t *testing.T, st store.Store) {
	if h := head(t, st, "r-none"); h != 0 {
		t.Fatalf("head of an unknown room = %d", h)
	}
	if got := read(t, st, "r-none", 0, 0, 100, false); len(got) != 0 {
		t.Fatalf("unknown room: got %v", seqs(got))
	}
	appendMsgs(t, st, nil) // a no-op, not an error
}

func testHistoryBounds(t *testing.T, st store.Store) {
	const room, n = "r-bounds", 100
	appendInChunks(t, st, msgs(room, 1, n), 30)
	if h := head(t, st, room); h != n {
		t.Fatalf("head = %d, want %d", h, n)
	}
	for _, tc := range []struct {
		name     string
		from, to uint64
		limit    int
		desc     bool
		first    uint64 // first seq expected
		count    int
	}{
		{"all asc", 1, 0, 1000, false, 1, n},
		{"all desc", 1, 0, 1000, true, n, n},
		{"from 0", 0, 0, 1000, false, 1, n},
		{"limit asc", 1, 0, 10, false, 1, 10},
		{"limit desc", 1, 0, 10, true, n, 10},
		{"window asc", 20, 29, 1000, false, 20, 10},
		{"window desc", 20, 29, 1000, true, 29, 10},
		{"window limited asc", 20, 29, 3, false, 20, 3},
		{"window limited desc", 20, 29, 3, true, 29, 3},
		{"single", 42, 42, 10, false, 42, 1},
		{"to past head", 95, 500, 100, false, 95, 6},
		{"to max", 95, math.MaxUint64, 100, true, n, 6},
		{"from past head", n + 1, 0, 100, false, 0, 0},
		{"to before from", 50, 49, 100, false, 0, 0},
		{"limit 0", 1, 0, 0, false, 0, 0},
		{"limit negative", 1, 0, -1, true, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkRun(t, read(t, st, room, tc.from, tc.to, tc.limit, tc.desc), room, tc.first, tc.count, tc.desc)
		})
	}
}

// Rooms whose ids share a prefix keep apart.
func testHistoryRoomsIsolated(t *testing.T, st store.Store) {
	rooms := map[string]uint64{"r": 5, "r1": 7, "r-1": 3, "r10": 9, "R": 2}
	var all []*pb.ArchivedMessage
	for room, n := range rooms {
		all = append(all, msgs(room, 1, n)...)
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	appendMsgs(t, st, all)
	for room, n := range rooms {
		if h := head(t, st, room); h != n {
			t.Fatalf("head of %s = %d, want %d", room, h, n)
		}
		checkRun(t, read(t, st, room, 1, 0, 100, false), room, 1, int(n), false)
		checkRun(t, read(t, st, room, 1, 0, 100, true), room, n, int(n), true)
	}
}

// Replaying batches (an archiver after a crash) stores each message once.
func testHistoryReplay(t *testing.T, st store.Store) {
	batch := append(msgs("r-a", 1, 40), msgs("r-b", 1, 25)...)
	appendMsgs(t, st, batch)
	appendMsgs(t, st, batch)
	appendMsgs(t, st, append(msgs("r-a", 30, 50), msg("r-a", 30))) // overlapping, with a duplicate inside
	checkRun(t, read(t, st, "r-a", 1, 0, 1000, false), "r-a", 1, 50, false)
	checkRun(t, read(t, st, "r-b", 1, 0, 1000, true), "r-b", 25, 25, true)
	if h := head(t, st, "r-a"); h != 50 {
		t.Fatalf("head r-a = %d, want 50", h)
	}
}

// The head never moves back, whatever order batches land in.
func testHistoryHeadMonotonic(t *testing.T, st store.Store) {
	const room = "r-mono"
	appendMsgs(t, st, msgs(room, 11, 20))
	if h := head(t, st, room); h != 20 {
		t.Fatalf("head = %d, want 20", h)
	}
	appendMsgs(t, st, msgs(room, 1, 10)) // an older batch landing later
	appendMsgs(t, st, msgs(room, 5, 8))
	if h := head(t, st, room); h != 20 {
		t.Fatalf("head = %d after older batches, want 20", h)
	}
	appendMsgs(t, st, msgs(room, 21, 21))
	if h := head(t, st, room); h != 21 {
		t.Fatalf("head = %d, want 21", h)
	}
	checkRun(t, read(t, st, room, 1, 0, 100, false), room, 1, 21, false)
}

// Reading a long history page by page, either way, sees every message once.
func testHistoryPaging(t *testing.T, st store.Store) {
	const room, n, page = "r-paging", 2500, 100
	appendInChunks(t, st, msgs(room, 1, n), 500)
	next := uint64(1)
	for {
		got := read(t, st, room, next, 0, page, false)
		if len(got) == 0 {
			break
		}
		checkRun(t, got, room, next, min(page, n-int(next)+1), false)
		next += uint64(len(got))
	}
	if next != n+1 {
		t.Fatalf("ascending pages ended before %d, want %d", next, n+1)
	}
	last := uint64(n)
	for last > 0 {
		got := read(t, st, room, 1, last, page, true)
		checkRun(t, got, room, last, min(page, int(last)), true)
		last -= uint64(len(got))
	}
}

// Appends to different rooms from several goroutines all land.
func testHistoryConcurrentAppends(t *testing.T, st store.Store) {
	const writers, batches, batchSize = 8, 20, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		room := fmt.Sprintf("r-conc-%d", w)
		wg.Go(func() {
			for b := range uint64(batches) {
				if err := st.AppendMessages(context.Background(), msgs(room, b*batchSize+1, (b+1)*batchSize)); err != nil {
					errs <- fmt.Errorf("room %s batch %d: %w", room, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range writers {
		room := fmt.Sprintf("r-conc-%d", w)
		if h := head(t, st, room); h != batches*batchSize {
			t.Fatalf("head of %s = %d, want %d", room, h, batches*batchSize)
		}
		checkRun(t, read(t, st, room, 1, 0, 10_000, false), room, 1, batches*batchSize, false)
	}
}
