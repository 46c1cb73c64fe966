package session

import (
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/gateway/internal/push"
	"github.com/parley-chat/parley/internal/ops"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// requestKinds name the client frames counted by kind.
var requestKinds = [...]string{"auth", "send", "subscribe", "unsubscribe", "history", "typing", "mark_read", "sync", "ping", "unknown", "malformed"}

const (
	kindAuth = iota
	kindSend
	kindSubscribe
	kindUnsubscribe
	kindHistory
	kindTyping
	kindMarkRead
	kindSync
	kindPing
	kindUnknown
	kindMalformed
)

// outKinds name the server frames counted by kind: signals (typing,
// presence, receipts, unread, online counts, subscription answers) and
// answers to requests (acks, errors, pages, pongs). Room messages, the
// bulk of the frames, are counted once per delivery by the hubs
// (parley_gateway_deliveries_total), not again per push here.
var outKinds = [...]string{"signal", "answer"}

const (
	outSignal = iota
	outAnswer
)

// pushed counts a pushed signal; message events are the hubs' to count.
func (m *metrics) pushed(f push.Frame) {
	if _, ok := f.(*push.Event); !ok {
		m.framesOut[outSignal].Add(1)
	}
}

// maxCode bounds the error codes counted one by one; higher ones count
// as the last.
const maxCode = 64

// metrics counts what the sessions did; atomics, read at each scrape.
type metrics struct {
	opened      atomic.Uint64
	requests    [len(requestKinds)]atomic.Uint64
	framesOut   [len(outKinds)]atomic.Uint64
	errors      [maxCode]atomic.Uint64
	sendSeconds prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{sendSeconds: ops.Latency("gateway_send_seconds",
		"Time from a client's send to the processor's answer, as the gateway sees it: the round trip through NATS, queueing and the CHAT_MSG append.")}
}

func (m *metrics) failed(code pb.ErrorCode) { m.errors[min(int(code), maxCode-1)].Add(1) }

var (
	descOpened    = ops.Desc("gateway_connections_opened_total", "WebSocket connections accepted.")
	descRequests  = ops.Desc("gateway_requests_total", "Client frames received, by kind (malformed: not decodable).", "kind")
	descFramesOut = ops.Desc("gateway_frames_sent_total", "Frames other than room messages queued to clients, by kind: signal (typing, presence, receipts, unread, online counts), answer (acks, errors, pages, pongs); room messages are parley_gateway_deliveries_total.", "kind")
	descErrors    = ops.Desc("gateway_errors_total", "Error frames sent to clients, by code (the protocol's code name).", "code")
)

// Describe implements prometheus.Collector.
func (ss *Sessions) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpened, descRequests, descFramesOut, descErrors} {
		ch <- d
	}
	ss.metrics.sendSeconds.Describe(ch)
}

// Collect implements prometheus.Collector.
func (ss *Sessions) Collect(ch chan<- prometheus.Metric) {
	m := ss.metrics
	ops.Count(ch, descOpened, m.opened.Load())
	for i, kind := range requestKinds {
		ops.Count(ch, descRequests, m.requests[i].Load(), kind)
	}
	for i, kind := range outKinds {
		ops.Count(ch, descFramesOut, m.framesOut[i].Load(), kind)
	}
	// Every code, zeros included, so that rates and alerts see a series
	// from the start.
	for code := range pb.ErrorCode_name {
		if code > 0 && code < maxCode {
			ops.Count(ch, descErrors, m.errors[code].Load(), strings.TrimPrefix(pb.ErrorCode(code).String(), "ERROR_CODE_"))
		}
	}
	m.sendSeconds.Collect(ch)
}

// kindOf is the counted kind of a decoded client frame.
func kindOf(f *pb.ClientFrame) int {
	switch f.Kind.(type) {
	case *pb.ClientFrame_Auth:
		return kindAuth
	case *pb.ClientFrame_Send:
		return kindSend
	case *pb.ClientFrame_Subscribe:
		return kindSubscribe
	case *pb.ClientFrame_Unsubscribe:
		return kindUnsubscribe
	case *pb.ClientFrame_History:
		return kindHistory
	case *pb.ClientFrame_Typing:
		return kindTyping
	case *pb.ClientFrame_MarkRead:
		return kindMarkRead
	case *pb.ClientFrame_Sync:
		return kindSync
	case *pb.ClientFrame_Ping:
		return kindPing
	}
	return kindUnknown
}
