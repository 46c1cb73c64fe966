package history

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/store"
)

const (
	// maxQueryLimit caps a page. It is above protocol.MaxHistoryLimit:
	// the caller is the gateway filling catch-up gaps, not a client.
	maxQueryLimit = 1000
	// queryConcurrency bounds the queries served at once per instance; a
	// store read is a network round trip on ScyllaDB, so serving them one
	// by one would cap throughput at one per round trip.
	queryConcurrency = 64
	// queryTimeout bounds one store read, so a stuck store cannot hold
	// every slot.
	queryTimeout = 10 * time.Second
)

// Serve starts the "parley-history" micro service answering
// pb.HistoryQuery requests on bus.HistoryQuerySubject with pb.HistoryResult.
// Instances form one queue group, so each query is answered once. It does
// not check membership: the gateway does before asking. Stop the returned
// service to stop serving.
func Serve(nc *nats.Conn, st store.HistoryStore, log *zap.Logger) (micro.Service, error) {
	log = log.Named("history")
	slots := make(chan struct{}, queryConcurrency)
	handle := func(req micro.Request) {
		slots <- struct{}{} // blocks delivery while all slots are busy
		data, reply := req.Data(), req.Reply()
		go func() {
			defer func() { <-slots }()
			ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
			defer cancel()
			out, err := proto.Marshal(answer(ctx, st, log, data))
			if err == nil {
				// Publish, not req.Respond: the service reads the request's
				// state once the handler returns, so it must not be touched
				// from here. (The service's processing-time stats therefore
				// measure dispatch only.)
				err = nc.Publish(reply, out)
			}
			if err != nil {
				log.Warn("responding", zap.Error(err))
			}
		}()
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        "parley-history",
		Version:     "1.0.0",
		Description: "Pages of rooms' archived messages",
		Endpoint: &micro.EndpointConfig{
			Subject: bus.HistoryQuerySubject,
			Handler: micro.HandlerFunc(handle),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("archiver: history service: %w", err)
	}
	return svc, nil
}

// answer serves one encoded HistoryQuery. Every failure becomes the
// result's error, so the caller always gets an answer.
func answer(ctx context.Context, st store.HistoryStore, log *zap.Logger, data []byte) *pb.HistoryResult {
	q := &pb.HistoryQuery{}
	if err := proto.Unmarshal(data, q); err != nil {
		return &pb.HistoryResult{Error: protocol.Errorf(pb.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "history query: %v", err)}
	}
	if e := protocol.ValidRoom(q.Room); e != nil {
		return &pb.HistoryResult{Error: e}
	}
	res, err := page(ctx, st, q)
	if err != nil {
		log.Error("history query failed", zap.String("room", q.Room), zap.Error(err))
		return &pb.HistoryResult{Error: protocol.Errorf(pb.ErrorCode_ERROR_CODE_INTERNAL, "history store unavailable")}
	}
	return res
}

// page reads the page q asks for: with after_seq the oldest messages above
// it, otherwise the newest, below before_seq when set; both bound a window.
// has_more says whether the window holds more in the direction read. The
// page is always ascending.
func page(ctx context.Context, st store.HistoryStore, q *pb.HistoryQuery) (*pb.HistoryResult, error) {
	limit := protocol.DefaultHistoryPage
	if q.Limit > 0 {
		limit = int(min(q.Limit, maxQueryLimit))
	}
	from, to := uint64(1), uint64(0) // to 0: no upper bound
	if q.AfterSeq != nil {
		from = *q.AfterSeq + 1
	}
	if q.BeforeSeq != nil {
		to = *q.BeforeSeq - 1
	}
	desc := q.AfterSeq == nil
	res := &pb.HistoryResult{}
	// An empty window: nothing below seq 1, nothing above the largest seq.
	empty := (q.BeforeSeq != nil && *q.BeforeSeq <= 1) || from == 0
	if !empty {
		// One more than the page tells whether more remain.
		msgs, err := st.Messages(ctx, q.Room, from, to, limit+1, desc)
		if err != nil {
			return nil, err
		}
		if len(msgs) > limit {
			msgs, res.HasMore = msgs[:limit], true
		}
		if desc {
			slices.Reverse(msgs)
		}
		res.Messages = msgs
	}
	// Read after the messages, so head_seq covers every seq returned.
	head, err := st.HistoryHead(ctx, q.Room)
	if err != nil {
		return nil, err
	}
	res.HeadSeq = head
	return res, nil
}
