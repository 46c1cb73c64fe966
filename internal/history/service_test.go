package history_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/nats-io/nats.go"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/history"
	"github.com/parley-chat/parley/internal/store/pebblestore"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

func ptr(v uint64) *uint64 { return &v }

// env is an embedded NATS server and a Pebble store behind a switch that
// fails its reads.
type env struct {
	nc *nats.Conn
	st *flakyStore
}

func setup(t *testing.T) *env {
	t.Helper()
	nc := bustest.Connect(t)
	st, err := pebblestore.Open(t.TempDir(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{nc: nc, st: &flakyStore{HistoryStore: st}}
}

// flakyStore fails every read while failing is set.
type flakyStore struct {
	store.HistoryStore
	failing atomic.Bool
}

func (f *flakyStore) Messages(ctx context.Context, room string, from, to uint64, limit int, desc bool) ([]*pb.ArchivedMessage, error) {
	if f.failing.Load() {
		return nil, errors.New("store down")
	}
	return f.HistoryStore.Messages(ctx, room, from, to, limit, desc)
}

func logger(t *testing.T) *zap.Logger { return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)) }

func message(room string, seq uint64) *pb.Message {
	return &pb.Message{Room: room, Seq: seq, Sender: "u1", ClientMsgId: fmt.Sprint("c", seq), SentAt: 1_700_000_000_000 + int64(seq), Body: &pb.Body{Text: fmt.Sprint(room, " ", seq)}}
}

func TestHistoryService(t *testing.T) {
	e := setup(t)
	const room, n = "r-hist", 1200
	var batch []*pb.ArchivedMessage
	for seq := uint64(1); seq <= n; seq++ {
		batch = append(batch, &pb.ArchivedMessage{Message: message(room, seq), StreamSeq: 100 + seq})
	}
	if err := e.st.AppendMessages(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	svc, err := history.Serve(e.nc, e.st, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	if name := svc.Info().Name; name != "parley-history" {
		t.Fatalf("service name %q", name)
	}

	for _, tc := range []struct {
		name        string
		q           *pb.HistoryQuery
		first, last uint64 // 0, 0: no messages
		more        bool
		head        uint64
	}{
		{"newest, default limit", &pb.HistoryQuery{Room: room}, n - 49, n, true, n},
		{"newest, limit capped at 1000", &pb.HistoryQuery{Room: room, Limit: 5000}, n - 999, n, true, n},
		{"newest, everything", &pb.HistoryQuery{Room: room, Limit: 1000, BeforeSeq: ptr(1001)}, 1, 1000, false, n},
		{"before", &pb.HistoryQuery{Room: room, BeforeSeq: ptr(50), Limit: 10}, 40, 49, true, n},
		{"before, reaching seq 1", &pb.HistoryQuery{Room: room, BeforeSeq: ptr(11), Limit: 10}, 1, 10, false, n},
		{"before, short page", &pb.HistoryQuery{Room: room, BeforeSeq: ptr(5), Limit: 10}, 1, 4, false, n},
		{"before 1", &pb.HistoryQuery{Room: room, BeforeSeq: ptr(1)}, 0, 0, false, n},
		{"before 0", &pb.HistoryQuery{Room: room, BeforeSeq: ptr(0)}, 0, 0, false, n},
		{"before past the head", &pb.HistoryQuery{Room: room, BeforeSeq: ptr(5000), Limit: 3}, n - 2, n, true, n},
		{"after", &pb.HistoryQuery{Room: room, AfterSeq: ptr(100), Limit: 10}, 101, 110, true, n},
		{"after 0", &pb.HistoryQuery{Room: room, AfterSeq: ptr(0), Limit: 3}, 1, 3, true, n},
		{"after, reaching the head", &pb.HistoryQuery{Room: room, AfterSeq: ptr(n - 10), Limit: 10}, n - 9, n, false, n},
		{"after, short page", &pb.HistoryQuery{Room: room, AfterSeq: ptr(n - 3), Limit: 10}, n - 2, n, false, n},
		{"after the head", &pb.HistoryQuery{Room: room, AfterSeq: ptr(n)}, 0, 0, false, n},
		{"after max", &pb.HistoryQuery{Room: room, AfterSeq: ptr(math.MaxUint64)}, 0, 0, false, n},
		{"window", &pb.HistoryQuery{Room: room, AfterSeq: ptr(10), BeforeSeq: ptr(15)}, 11, 14, false, n},
		{"window, limited", &pb.HistoryQuery{Room: room, AfterSeq: ptr(10), BeforeSeq: ptr(15), Limit: 2}, 11, 12, true, n},
		{"empty window", &pb.HistoryQuery{Room: room, AfterSeq: ptr(10), BeforeSeq: ptr(11)}, 0, 0, false, n},
		{"unknown room", &pb.HistoryQuery{Room: "r-none"}, 0, 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := history.Query(context.Background(), e.nc, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if res.HasMore != tc.more || res.HeadSeq != tc.head {
				t.Fatalf("has_more %v head %d, want %v %d", res.HasMore, res.HeadSeq, tc.more, tc.head)
			}
			want := 0
			if tc.last != 0 {
				want = int(tc.last - tc.first + 1)
			}
			if len(res.Messages) != want {
				t.Fatalf("got %d messages, want %d (%d..%d)", len(res.Messages), want, tc.first, tc.last)
			}
			for i, am := range res.Messages {
				seq := tc.first + uint64(i)
				if !proto.Equal(am.Message, message(room, seq)) || am.StreamSeq != 100+seq {
					t.Fatalf("message %d = seq %d (stream %d), want seq %d", i, am.Message.GetSeq(), am.StreamSeq, seq)
				}
			}
		})
	}
}

func TestHistoryServiceErrors(t *testing.T) {
	e := setup(t)
	svc, err := history.Serve(e.nc, e.st, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	ctx := context.Background()

	for _, room := range []string{"", "a.b", "r>", "with space", string(make([]byte, protocol.MaxIDLen+1))} {
		_, err := history.Query(ctx, e.nc, &pb.HistoryQuery{Room: room})
		var herr *protocol.Error
		if !errors.As(err, &herr) || herr.Code != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
			t.Fatalf("room %q: %v, want INVALID_ARGUMENT", room, err)
		}
	}

	// A body that is not a HistoryQuery gets an answer, not a timeout.
	resp, err := e.nc.Request(bus.HistoryQuerySubject, []byte{0xff, 0xff, 0xff}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res := &pb.HistoryResult{}
	if err := proto.Unmarshal(resp.Data, res); err != nil {
		t.Fatal(err)
	}
	if res.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_MALFORMED_FRAME {
		t.Fatalf("garbage request: %v, want MALFORMED_FRAME", res)
	}

	e.st.failing.Store(true)
	_, err = history.Query(ctx, e.nc, &pb.HistoryQuery{Room: "r-down"})
	var herr *protocol.Error
	if !errors.As(err, &herr) || herr.Code != pb.ErrorCode_ERROR_CODE_INTERNAL {
		t.Fatalf("failing store: %v, want INTERNAL", err)
	}
	if herr.Proto().GetCode() != pb.ErrorCode_ERROR_CODE_INTERNAL {
		t.Fatalf("Proto() = %v", herr.Proto())
	}
}

// Many queries at once are all answered (they are served concurrently).
func TestHistoryServiceConcurrent(t *testing.T) {
	e := setup(t)
	one := []*pb.ArchivedMessage{{Message: message("r-c", 1), StreamSeq: 1}}
	if err := e.st.AppendMessages(context.Background(), one); err != nil {
		t.Fatal(err)
	}
	svc, err := history.Serve(e.nc, e.st, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	errs := make(chan error, 500)
	for range cap(errs) {
		go func() {
			res, err := history.Query(context.Background(), e.nc, &pb.HistoryQuery{Room: "r-c"})
			if err == nil && (len(res.Messages) != 1 || res.HeadSeq != 1) {
				err = errors.New("wrong answer")
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := svc.Stats(); st.Endpoints[0].NumRequests != cap(errs) {
		t.Fatalf("service counted %d requests", st.Endpoints[0].NumRequests)
	}
}
