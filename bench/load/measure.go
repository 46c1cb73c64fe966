package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws/wsutil"

	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/pkg/client"
)

// Counter names a count a worker keeps.
type Counter int

const (
	Connected     Counter = iota // connections established, reconnects included
	Reconnected                  // connections re-established after a drop
	Disrupted                    // connections dropped on purpose (Traffic.DisruptAt)
	CaughtUp                     // dropped clients that got every room back to its head
	Sent                         // new messages (not retries)
	Acked                        // messages acknowledged
	DuplicateAcks                // acks saying duplicate: a retry of a stored message
	Retried                      // send attempts repeated with the same client_msg_id
	Delivered                    // message events received
	HistoryReads                 // history pages read
	numCounters
)

var counterNames = [numCounters]string{
	"connected", "reconnected", "disrupted", "caught_up", "sent", "acked",
	"duplicate_acks", "retried", "delivered", "history_reads",
}

func (c Counter) String() string { return counterNames[c] }

// Latency histograms a worker keeps, by name in Report.Latencies.
const (
	SendAck     = "send_ack"     // send until its ack, retries included
	SendDeliver = "send_deliver" // send until each receiver's delivery
	Connect     = "connect"      // dial, WebSocket handshake and auth
	Subscribe   = "subscribe"    // one Subscribe request
	History     = "history"      // one History request
	Resume      = "resume"       // a drop until every room is subscribed again
	CatchUp     = "catch_up"     // a drop until every room is back at its head
	SendLag     = "send_lag"     // how late sends left against their schedule
)

var latencyNames = []string{SendAck, SendDeliver, Connect, Subscribe, History, Resume, CatchUp, SendLag}

// Series a worker keeps, by name in Report.Series: events per second, and
// latencies per second where the name says so.
const (
	SeriesSent      = "sent"      // sends, no latency
	SeriesAcked     = "acked"     // acks with send→ack
	SeriesDelivered = "delivered" // deliveries with send→deliver
	// SeriesBySend counts deliveries with send→deliver at the second their
	// message was sent, not received: what the messages sent at a moment
	// went through, however late they arrived (a fault's before, during
	// and after).
	SeriesBySend = "delivered_by_send"
)

var seriesNames = []string{SeriesSent, SeriesAcked, SeriesDelivered, SeriesBySend}

// measure is what a worker records during one phase. Phases are separated
// by a drain, so nothing records into a measure once it is reported.
type measure struct {
	// start and end bound the phase's activity; the phase's method sets
	// them, and Report reads them after it returned.
	start, end time.Time
	counts     [numCounters]atomic.Uint64
	latency    map[string]*metrics.Recorder
	series     map[string]*metrics.Series
	errors     errorCounts
}

func newMeasure() *measure {
	m := &measure{
		start:   time.Now(),
		latency: make(map[string]*metrics.Recorder, len(latencyNames)),
		series:  make(map[string]*metrics.Series, len(seriesNames)),
		errors:  errorCounts{m: make(map[string]*ErrorCount)},
	}
	for _, n := range latencyNames {
		m.latency[n] = metrics.NewRecorder()
	}
	for _, n := range seriesNames {
		m.series[n] = metrics.NewSeries(time.Second)
	}
	return m
}

func (m *measure) add(c Counter, n uint64) { m.counts[c].Add(n) }

func (m *measure) count(c Counter) uint64 { return m.counts[c].Load() }

// ErrorCount is how often one kind of failure happened, with the first
// message seen, for finding it in the server's logs.
type ErrorCount struct {
	Count   uint64 `json:"count"`
	Example string `json:"example"`
}

type errorCounts struct {
	mu sync.Mutex
	m  map[string]*ErrorCount
}

func (e *errorCounts) add(class string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.m[class]
	if c == nil {
		c = &ErrorCount{Example: err.Error()}
		e.m[class] = c
	}
	c.Count++
}

func (e *errorCounts) export() map[string]ErrorCount {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]ErrorCount, len(e.m))
	for k, v := range e.m {
		out[k] = *v
	}
	return out
}

// errorClass names a failure for counting, with bounded variety: the
// server's error code, the WebSocket close code, or the kind of network
// failure.
func errorClass(op string, err error) string {
	var se *client.ServerError
	var ce wsutil.ClosedError
	var errno syscall.Errno
	switch {
	case errors.As(err, &se):
		return op + ": " + se.Code.String()
	case errors.As(err, &ce):
		return fmt.Sprintf("%s: closed %d", op, ce.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return op + ": timeout"
	case errors.As(err, &errno):
		return op + ": " + errno.Error()
	default:
		return op + ": other"
	}
}
