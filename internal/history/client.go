// Package history is the history service (Serve, run by the archiver role)
// and its client (Query): room messages from the history store, by
// request/reply on bus.HistoryQuerySubject with protobuf bodies.
package history

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// DefaultTimeout bounds a query whose context has no deadline: a request
// without one would wait forever for a service that never answers.
const DefaultTimeout = 5 * time.Second

// Query asks the history service for a page of q.Room's archived messages.
// An error the service answered with is a *protocol.Error; transport failures (no
// responders, timeout) are wrapped nats errors.
func Query(ctx context.Context, nc *nats.Conn, q *pb.HistoryQuery) (*pb.HistoryResult, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	req, err := proto.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("history: encode query: %w", err)
	}
	resp, err := nc.RequestWithContext(ctx, bus.HistoryQuerySubject, req)
	if err != nil {
		return nil, fmt.Errorf("history: query room %q: %w", q.GetRoom(), err)
	}
	res := &pb.HistoryResult{}
	if err := proto.Unmarshal(resp.Data, res); err != nil {
		return nil, fmt.Errorf("history: decode result for room %q: %w", q.GetRoom(), err)
	}
	if e := res.GetError(); e != nil {
		return nil, protocol.FromProto(e)
	}
	return res, nil
}
