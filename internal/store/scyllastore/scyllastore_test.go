package scyllastore_test

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/store/scyllastore"
	"github.com/parley-chat/parley/internal/store/scyllastore/scyllatest"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
	"github.com/parley-chat/parley/pkg/store/storetest"
	cqlschema "github.com/parley-chat/parley/schemas/cql"
)

// The tests run against a real node (see scyllatest); each gets a fresh
// keyspace, dropped afterwards.

func msg(room string, seq uint64) *pb.ArchivedMessage {
	return &pb.ArchivedMessage{
		Message: &pb.Message{
			Room: room, Seq: seq, Sender: "u1", ClientMsgId: fmt.Sprint("c", seq),
			SentAt: 1_700_000_000_000 + int64(seq), Body: &pb.Body{Text: fmt.Sprint("hello ", seq)},
		},
		StreamSeq: 10_000 + seq,
	}
}

// msgs returns the messages from..to of room, shuffled.
func msgs(room string, from, to uint64) []*pb.ArchivedMessage {
	var out []*pb.ArchivedMessage
	for s := from; s <= to; s++ {
		out = append(out, msg(room, s))
	}
	mrand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func seqs(ms []*pb.ArchivedMessage) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Message.Seq
	}
	return out
}

// checkRun fails unless got is exactly the seqs first, first±1, ... (n of
// them, descending when desc) with their contents intact.
func checkRun(t *testing.T, got []*pb.ArchivedMessage, room string, first uint64, n int, desc bool) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d messages %v, want %d from %d", len(got), seqs(got), n, first)
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

func head(t *testing.T, st store.HistoryStore, room string) uint64 {
	t.Helper()
	h, err := st.HistoryHead(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func appendAll(t *testing.T, st store.HistoryStore, ms []*pb.ArchivedMessage) {
	t.Helper()
	if err := st.AppendMessages(context.Background(), ms); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, st store.HistoryStore, room string, from, to uint64, limit int, desc bool) []*pb.ArchivedMessage {
	t.Helper()
	got, err := st.Messages(context.Background(), room, from, to, limit, desc)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Every subtest gets its own keyspace: the suite wants an empty store each.
func TestConformance(t *testing.T) {
	scyllatest.Require(t) // skip or fail once, not per subtest
	storetest.Run(t, func(t *testing.T) store.Store { return scyllatest.Open(t, scyllatest.Keyspace(t)) })
}

// Messages spanning four buckets, read whole and in pages of 700 that cross
// every bucket edge, in both directions.
func TestBucketPaging(t *testing.T) {
	st := scyllatest.Open(t, scyllatest.Keyspace(t))
	const room, n = "r-buckets", 3*scyllastore.BucketSize + 500
	ms := msgs(room, 1, n)
	for i := 0; i < len(ms); i += 900 { // arbitrary chunks, as an archiver would write them
		appendAll(t, st, ms[i:min(i+900, len(ms))])
	}
	if h := head(t, st, room); h != n {
		t.Fatalf("head = %d, want %d", h, n)
	}

	checkRun(t, read(t, st, room, 1, 0, 10*n, false), room, 1, n, false)
	checkRun(t, read(t, st, room, 1, 0, 10*n, true), room, n, n, true)

	const page = 700
	for from := uint64(1); from <= n; from += page {
		checkRun(t, read(t, st, room, from, 0, page, false), room, from, min(page, n-int(from)+1), false)
	}
	for to := uint64(n); to >= 1; to -= min(to, page) {
		checkRun(t, read(t, st, room, 1, to, page, true), room, to, min(page, int(to)), true)
	}

	// A window across two bucket edges; to past the head; from past the head.
	checkRun(t, read(t, st, room, 950, 2050, 5000, false), room, 950, 1101, false)
	checkRun(t, read(t, st, room, 950, 2050, 5000, true), room, 2050, 1101, true)
	checkRun(t, read(t, st, room, n-10, 1<<40, 100, false), room, n-10, 11, false)
	if got := read(t, st, room, n+1, 0, 100, false); len(got) != 0 {
		t.Fatalf("past the head: got %v", seqs(got))
	}
	if got := read(t, st, room, 3000, 2000, 100, false); len(got) != 0 {
		t.Fatalf("from > to: got %v", seqs(got))
	}
}

// Rows beyond the head (a write the archiver has not completed) are never
// read: the bucket walk stops at the head's bucket.
func TestMessagesStopAtHead(t *testing.T) {
	cfg := scyllatest.Keyspace(t)
	st := scyllatest.Open(t, cfg)
	const room = "r-head"
	appendAll(t, st, msgs(room, 1, 1500))
	stray, _ := proto.Marshal(msg(room, 1501).Message)
	for _, seq := range []int64{1501, 2500, 9000} {
		scyllatest.Exec(t, cfg, "INSERT INTO "+cfg.Keyspace+".messages (room_id, bucket, seq, stream_seq, message) VALUES (?, ?, ?, ?, ?)",
			room, seq/scyllastore.BucketSize, seq, 0, stray)
	}
	checkRun(t, read(t, st, room, 1, 0, 1<<20, false), room, 1, 1500, false)
	checkRun(t, read(t, st, room, 1, 0, 10, true), room, 1500, 10, true)
}

// Replaying a batch (the archiver after a crash) changes nothing.
func TestReplayIsIdempotent(t *testing.T) {
	st := scyllatest.Open(t, scyllatest.Keyspace(t))
	batch := append(msgs("r-a", 995, 1010), msgs("r-b", 1, 20)...)
	appendAll(t, st, batch)
	appendAll(t, st, batch)
	checkRun(t, read(t, st, "r-a", 0, 0, 100, false), "r-a", 995, 16, false)
	checkRun(t, read(t, st, "r-b", 0, 0, 100, false), "r-b", 1, 20, false)
	if h := head(t, st, "r-a"); h != 1010 {
		t.Fatalf("head r-a = %d, want 1010", h)
	}
}

// The head never moves backwards, whatever order writes land in.
func TestHeadIsMonotonic(t *testing.T) {
	st := scyllatest.Open(t, scyllatest.Keyspace(t))
	const room = "r-mono"
	if h := head(t, st, room); h != 0 {
		t.Fatalf("empty room head = %d", h)
	}
	appendAll(t, st, msgs(room, 1, 20))
	appendAll(t, st, msgs(room, 5, 10)) // an older batch replayed after a newer one
	if h := head(t, st, room); h != 20 {
		t.Fatalf("head = %d after an older replay, want 20", h)
	}
	appendAll(t, st, msgs(room, 21, 21))
	if h := head(t, st, room); h != 21 {
		t.Fatalf("head = %d, want 21", h)
	}
}

// Large messages are split into several batches, each under the size cap.
func TestLargeMessages(t *testing.T) {
	st := scyllatest.Open(t, scyllatest.Keyspace(t))
	const room = "r-large"
	var ms []*pb.ArchivedMessage
	for seq := uint64(1); seq <= 12; seq++ {
		m := msg(room, seq)
		m.Message.Body.Text = strings.Repeat("x", 256<<10)
		ms = append(ms, m)
	}
	appendAll(t, st, ms)
	got := read(t, st, room, 1, 0, 100, false)
	if len(got) != len(ms) {
		t.Fatalf("got %d messages, want %d", len(got), len(ms))
	}
	for i := range got {
		if !proto.Equal(got[i], ms[i]) {
			t.Fatalf("message %d differs", i+1)
		}
	}
}

// A read larger than a driver page follows the page state.
func TestMembersAcrossPages(t *testing.T) {
	st := scyllatest.Open(t, scyllatest.Keyspace(t))
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	room := store.Room{ID: "r-big", Kind: store.RoomChannel, Name: "big", CreatedBy: "owner", CreatedAt: now}
	const n = 2500
	var members []store.Member
	for i := range n {
		members = append(members, store.Member{User: fmt.Sprintf("u%05d", i), Role: store.RoleMember, JoinedAt: now})
	}
	if err := st.CreateRoom(ctx, room, members); err != nil {
		t.Fatal(err)
	}
	got, err := st.Members(ctx, room.ID, "", n+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[0] != members[0] || got[n-1] != members[n-1] {
		t.Fatalf("got %d members, first %v last %v", len(got), got[0], got[len(got)-1])
	}
	got, err = st.Members(ctx, room.ID, "u01199", 1001)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1001 || got[0].User != "u01200" || got[1000].User != "u02200" {
		t.Fatalf("page after u01199: %d members from %v", len(got), got[0])
	}
	if err := st.CreateRoom(ctx, room, nil); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
}

// Migrate a second time applies nothing; Open refuses a keyspace that was
// never migrated.
func TestMigrate(t *testing.T) {
	cfg := scyllatest.Keyspace(t)
	ks := scyllatest.Session(t, cfg, cfg.Keyspace)
	defer ks.Close()
	appliedAt := func() map[int]time.Time {
		out := map[int]time.Time{}
		iter := ks.Query("SELECT version, applied_at FROM schema_migrations").Iter()
		var v int
		var at time.Time
		for iter.Scan(&v, &at) {
			out[v] = at
		}
		if err := iter.Close(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := appliedAt()
	all, err := cqlschema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != len(all) {
		t.Fatalf("recorded %d migrations, have %d", len(before), len(all))
	}
	if err := scyllastore.Migrate(context.Background(), cfg, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if after := appliedAt(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("second Migrate changed schema_migrations: %v -> %v", before, after)
	}

	bare := cfg
	bare.Keyspace = cfg.Keyspace + "_bare"
	scyllatest.Exec(t, cfg, "CREATE KEYSPACE "+bare.Keyspace+" WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
	t.Cleanup(func() { scyllatest.Exec(t, cfg, "DROP KEYSPACE IF EXISTS "+bare.Keyspace) })
	if st, err := scyllastore.Open(context.Background(), bare, zap.NewNop()); err == nil {
		st.Close()
		t.Fatal("Open of an unmigrated keyspace succeeded")
	}
}
