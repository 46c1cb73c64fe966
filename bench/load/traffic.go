package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parley-chat/parley/bench/verify"
	"github.com/parley-chat/parley/pkg/client"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Grace bounds how long requests of a step may take after its end:
// sends waiting for a resume and their retries included.
const (
	stepGrace    = 60 * time.Second
	sendAttempts = 8
	retryBackoff = 50 * time.Millisecond
	historyLimit = 50
)

// sender is a Slot resolved for sending.
type sender struct {
	conn *conn
	room string
	log  *verify.Room
}

// Run performs one load step starting at start and returns once every
// request it made is answered or given up.
func (w *Worker) Run(ctx context.Context, t Traffic, start time.Time) error {
	for _, s := range slices.Concat(t.Senders, t.Readers) {
		if s.Client < 0 || s.Client >= len(w.conns) {
			return fmt.Errorf("slot of client %d: the worker has %d", s.Client, len(w.conns))
		}
	}
	m := w.measure()
	m.start = start
	end := start.Add(t.Duration)
	ctx, cancel := context.WithDeadline(ctx, end.Add(max(stepGrace, t.RetryFor)))
	defer cancel()

	inflight := make(chan struct{}, max(t.MaxInFlight, 1))
	var wg sync.WaitGroup
	// issue runs f as a request of its own within the in-flight bound,
	// reporting false once the step is over.
	issue := func(f func()) bool {
		select {
		case inflight <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		wg.Go(func() {
			defer func() { <-inflight }()
			f()
		})
		return true
	}

	senders := make([]sender, len(t.Senders))
	for i, s := range t.Senders {
		senders[i] = sender{conn: w.conns[s.Client], room: s.Room, log: w.v.Room(s.Room)}
	}
	if len(senders) > 0 && t.Rate > 0 {
		wg.Go(func() {
			pace(ctx, start, end, t.Rate, t.Messages, func(i int, due time.Time) bool {
				id := "w" + strconv.Itoa(w.plan.Worker) + "-" + strconv.FormatUint(w.nextID.Add(1), 10)
				return issue(func() {
					m.latency[SendLag].Record(time.Since(due))
					w.send(ctx, senders[i%len(senders)], id, t.RetryFor)
				})
			})
		})
	}
	if len(t.Readers) > 0 && t.HistoryRate > 0 {
		wg.Go(func() {
			pace(ctx, start, end, t.HistoryRate, 0, func(i int, _ time.Time) bool {
				r := t.Readers[i%len(t.Readers)]
				return issue(func() { w.readHistory(ctx, w.conns[r.Client], r.Room) })
			})
		})
	}
	if t.DisruptAt > 0 && t.DisruptAt < t.Duration {
		wg.Go(func() {
			if Sleep(ctx, time.Until(start.Add(t.DisruptAt))) {
				w.disrupt()
			}
		})
	}
	wg.Wait()
	m.end = time.Now()
	return nil
}

// pace calls fn(i, due) for i = 0, 1, … at rate per second from start (event
// i is due at start + i/rate) until end, limit calls (0: no limit), ctx's
// end, or fn returning false. Calls that fall behind are made at once.
func pace(ctx context.Context, start, end time.Time, rate float64, limit int, fn func(i int, due time.Time) bool) {
	if !Sleep(ctx, time.Until(start)) {
		return
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; limit == 0 || i < limit; {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		due := int(now.Sub(start).Seconds()*rate) + 1 // events due by now
		if limit > 0 {
			due = min(due, limit)
		}
		for ; i < due; i++ {
			if !fn(i, start.Add(time.Duration(float64(i)/rate*float64(time.Second)))) {
				return
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// send sends one new message, retrying with the same client_msg_id after
// failures that leave its fate open, as the protocol asks: sendAttempts
// times, or for retryFor when set.
func (w *Worker) send(ctx context.Context, s sender, id string, retryFor time.Duration) {
	m := w.measure()
	start := time.Now()
	body := &pb.Body{Text: Body(start, w.plan.BodySize)}
	s.log.Sent()
	m.add(Sent, 1)
	m.series[SeriesSent].Add(start, 1)
	for attempt := 1; ; attempt++ {
		var ack *pb.SendAck
		err := s.conn.do(ctx, func(ctx context.Context, c *client.Client) (err error) {
			ack, err = c.SendBody(ctx, s.room, id, body)
			return err
		})
		if err == nil {
			s.log.Acked(ack.Seq)
			now := time.Now()
			m.latency[SendAck].Record(now.Sub(start))
			m.series[SeriesAcked].Record(now, now.Sub(start))
			m.add(Acked, 1)
			if ack.Duplicate {
				m.add(DuplicateAcks, 1)
			}
			return
		}
		// Every failed attempt counts as an error, but for those on a
		// connection the bench dropped itself; Retried tells how many were
		// tried again, and the verifier whether they got through.
		if !errors.Is(err, errDropped) {
			w.fail("send", err)
		}
		more := attempt < sendAttempts
		if retryFor > 0 {
			more = time.Since(start) < retryFor
		}
		if !retryable(err) || !more || !Sleep(ctx, backoff(retryBackoff, attempt)) {
			return
		}
		m.add(Retried, 1)
	}
}

// retryable reports whether a send may have failed for a passing reason:
// a lost or dropped connection, an unanswered request, or a server asking
// to retry.
func retryable(err error) bool {
	var se *client.ServerError
	if !errors.As(err, &se) {
		return true
	}
	switch se.Code {
	case pb.ErrorCode_ERROR_CODE_UNAVAILABLE, pb.ErrorCode_ERROR_CODE_OVERLOADED, pb.ErrorCode_ERROR_CODE_RATE_LIMITED, pb.ErrorCode_ERROR_CODE_INTERNAL:
		return true
	}
	return false
}

// readHistory reads the newest page of room and checks that it is dense
// and ascending.
func (w *Worker) readHistory(ctx context.Context, cn *conn, room string) {
	var page *pb.HistoryPage
	var took time.Duration
	err := cn.do(ctx, func(ctx context.Context, c *client.Client) (err error) {
		start := time.Now()
		page, err = c.History(ctx, &pb.HistoryRequest{Room: room, Limit: historyLimit})
		took = time.Since(start)
		return err
	})
	if err != nil {
		if !errors.Is(err, errDropped) {
			w.fail("history", err)
		}
		return
	}
	m := w.measure()
	m.latency[History].Record(took)
	m.add(HistoryReads, 1)
	msgs := page.GetMessages()
	for i := 1; i < len(msgs); i++ {
		if msgs[i].Seq != msgs[i-1].Seq+1 {
			w.fail("history", fmt.Errorf("room %s: page holds seq %d after %d", room, msgs[i].Seq, msgs[i-1].Seq))
			return
		}
	}
}

// disrupt drops every connection at once; each client then reconnects
// and resumes on its own.
func (w *Worker) disrupt() {
	now := time.Now()
	var n uint64
	for _, cn := range w.conns {
		if cn.drop(now) {
			n++
		}
	}
	w.measure().add(Disrupted, n)
}
