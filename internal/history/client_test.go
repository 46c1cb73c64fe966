package history_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/history"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// serve answers every query with reply(query); nil means no answer.
func serve(t *testing.T, nc *nats.Conn, reply func(q *pb.HistoryQuery) []byte) *nats.Subscription {
	t.Helper()
	sub, err := nc.Subscribe(bus.HistoryQuerySubject, func(m *nats.Msg) {
		q := &pb.HistoryQuery{}
		if err := proto.Unmarshal(m.Data, q); err != nil {
			t.Errorf("query does not decode: %v", err)
			return
		}
		if data := reply(q); data != nil {
			m.Respond(data)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// respond answers every query with res.
func respond(t *testing.T, nc *nats.Conn, res *pb.HistoryResult) {
	t.Helper()
	data, err := proto.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, nc, func(*pb.HistoryQuery) []byte { return data })
}

func TestQuery(t *testing.T) {
	nc := bustest.Connect(t)
	want := &pb.HistoryResult{
		Messages: []*pb.ArchivedMessage{{Message: &pb.Message{Room: "r", Seq: 3}, StreamSeq: 9}},
		HasMore:  true,
		HeadSeq:  3,
	}
	respond(t, nc, want)
	got, err := history.Query(context.Background(), nc, &pb.HistoryQuery{Room: "r", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestQueryServiceError(t *testing.T) {
	nc := bustest.Connect(t)
	respond(t, nc, &pb.HistoryResult{Error: protocol.Errorf(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "room: bad")})
	res, err := history.Query(context.Background(), nc, &pb.HistoryQuery{Room: "r"})
	var herr *protocol.Error
	if !errors.As(err, &herr) || res != nil {
		t.Fatalf("got %v, %v; want a *protocol.Error", res, err)
	}
	if herr.Code != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT || herr.Message != "room: bad" {
		t.Fatalf("error = %+v", herr)
	}
	if p := herr.Proto(); p.Code != herr.Code || p.Message != herr.Message {
		t.Fatalf("Proto() = %v", p)
	}
}

func TestQueryTransportErrors(t *testing.T) {
	nc := bustest.Connect(t)
	q := &pb.HistoryQuery{Room: "r"}
	if _, err := history.Query(context.Background(), nc, q); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("no service: %v, want ErrNoResponders", err)
	}

	silent := serve(t, nc, func(*pb.HistoryQuery) []byte { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := history.Query(ctx, nc, q); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent service: %v, want a deadline error", err)
	}
	silent.Unsubscribe()

	serve(t, nc, func(*pb.HistoryQuery) []byte { return []byte{0xff, 0xff} })
	if res, err := history.Query(context.Background(), nc, q); err == nil {
		t.Fatalf("garbage answer decoded as %v", res)
	}
}
