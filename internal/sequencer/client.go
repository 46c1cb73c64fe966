// Package sequencer is how a gateway hands client messages to the
// processors. A message travels as a core NATS request on
// bus.SendSubject(room): the processor that holds the lease of the room's
// partition is the only subscriber there, stores the message in CHAT_MSG
// and answers with a pb.SendResult. Nothing is stored on the way, so the
// sender's wait is one request and one JetStream publish.
//
// The Client retries a request, with the same bytes, until a processor
// answers or the deadline passes: at once with backoff when no processor
// holds the partition (NATS answers "no responders", e.g. during a
// handover), and after AttemptTimeout when an answer is lost (a processor
// died holding it). Processors dedup (room, sender, client_msg_id), so a
// retry never stores a message twice and its answer carries the original
// seq.
package sequencer

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
)

// Config tunes a Client; zero fields take the defaults.
type Config struct {
	// Partitions is the deployment's partition count (bus.EnsureStreams).
	Partitions int
	// AttemptTimeout is how long an attempt waits for its answer before the
	// request is sent again.
	AttemptTimeout time.Duration // default 5s
	// Deadline bounds a send's retries; past it the sender gets UNAVAILABLE
	// and retries with the same client_msg_id itself. It must cover a
	// processor failover (the lease TTL).
	Deadline time.Duration // default 20s
	// MaxPending bounds the sends awaiting an answer; past it a send is
	// answered OVERLOADED at once instead of queueing.
	MaxPending int // default 50,000
	// OverloadRetry is the retry-after given with OVERLOADED.
	OverloadRetry time.Duration // default 500ms
}

func (c Config) withDefaults() Config {
	if c.Partitions <= 0 {
		c.Partitions = bus.DefaultPartitions
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 5 * time.Second
	}
	if c.Deadline <= 0 {
		c.Deadline = 20 * time.Second
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 50_000
	}
	if c.OverloadRetry <= 0 {
		c.OverloadRetry = 500 * time.Millisecond
	}
	return c
}

// Retry backoff while no processor holds a partition.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// Client sends messages to the processors and routes their answers.
type Client struct {
	nc     *nats.Conn
	cfg    Config
	prefix string // reply subjects are prefix + token
	sub    *nats.Subscription

	mu     sync.Mutex
	calls  map[uint64]*call
	next   uint64
	closed bool
	// resends counts requests sent again: unanswered within the attempt
	// timeout, or answered by no processor.
	resends atomic.Uint64
}

// call is one send awaiting its answer. Its fields are guarded by the
// client's mu.
type call struct {
	msg      *nats.Msg // the request, resent as is
	in       *pb.InboundMessage
	done     func(*pb.SendResult)
	deadline time.Time
	backoff  time.Duration
	timer    *time.Timer // the next retry or attempt timeout
}

// NewClient subscribes to the answers; Close stops it.
func NewClient(nc *nats.Conn, cfg Config) (*Client, error) {
	c := &Client{nc: nc, cfg: cfg.withDefaults(), prefix: nc.NewInbox() + ".", calls: make(map[uint64]*call)}
	sub, err := nc.Subscribe(c.prefix+"*", c.onAnswer)
	if err != nil {
		return nil, err
	}
	// Answers are small and must not be dropped as a slow consumer.
	_ = sub.SetPendingLimits(-1, 64<<20)
	c.sub = sub
	return c, nil
}

// Pending is the number of sends awaiting an answer.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// Send hands in to the processor owning its room. done is called exactly
// once, from another goroutine, with the processor's answer or an error
// result (UNAVAILABLE after the deadline, OVERLOADED past MaxPending).
func (c *Client) Send(in *pb.InboundMessage, done func(*pb.SendResult)) {
	data, err := proto.Marshal(in)
	if err != nil {
		done(ErrorResult(in, protocol.Reject(pb.ErrorCode_ERROR_CODE_INTERNAL, "encode: %v", err)))
		return
	}
	c.mu.Lock()
	if c.closed || len(c.calls) >= c.cfg.MaxPending {
		closed := c.closed
		c.mu.Unlock()
		e := protocol.Reject(pb.ErrorCode_ERROR_CODE_OVERLOADED, "too many messages waiting to be stored; retry with the same client_msg_id")
		if closed {
			e = protocol.Reject(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "shutting down; retry with the same client_msg_id")
		}
		e.RetryAfter = c.cfg.OverloadRetry
		done(ErrorResult(in, e))
		return
	}
	c.next++
	token := c.next
	cl := &call{
		msg:      &nats.Msg{Subject: bus.SendSubject(in.Room, c.cfg.Partitions), Reply: c.prefix + strconv.FormatUint(token, 10), Data: data},
		in:       in,
		done:     done,
		deadline: time.Now().Add(c.cfg.Deadline),
		backoff:  minBackoff,
	}
	c.calls[token] = cl
	c.resends.Add(1)
	c.attemptLocked(token, cl)
	c.mu.Unlock()
}

// Resends counts the requests sent again, unanswered or answered by no
// processor: the redeliveries of this send path.
func (c *Client) Resends() uint64 { return c.resends.Load() }

// Do sends in and waits for its answer or the end of ctx.
func (c *Client) Do(ctx context.Context, in *pb.InboundMessage) (*pb.SendResult, error) {
	answer := make(chan *pb.SendResult, 1)
	c.Send(in, func(r *pb.SendResult) { answer <- r })
	select {
	case r := <-answer:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// attemptLocked publishes a call's request and arms its attempt timeout.
// A failed publish (the connection is down) is an attempt like any other:
// the timeout sends it again.
func (c *Client) attemptLocked(token uint64, cl *call) {
	cl.timer = time.AfterFunc(c.cfg.AttemptTimeout, func() { c.retry(token) })
	_ = c.nc.PublishMsg(cl.msg)
}

// retry sends a call again, or fails it once its deadline has passed.
func (c *Client) retry(token uint64) {
	c.mu.Lock()
	cl := c.calls[token]
	if cl == nil {
		c.mu.Unlock()
		return
	}
	if time.Now().After(cl.deadline) {
		delete(c.calls, token)
		c.mu.Unlock()
		cl.done(ErrorResult(cl.in, protocol.Reject(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "message not stored in time; retry with the same client_msg_id")))
		return
	}
	c.attemptLocked(token, cl)
	c.mu.Unlock()
}

// onAnswer routes a processor's answer, or NATS's "no responders" status,
// to its call.
func (c *Client) onAnswer(m *nats.Msg) {
	token, err := strconv.ParseUint(m.Subject[len(c.prefix):], 10, 64)
	if err != nil {
		return
	}
	if m.Header.Get("Status") == "503" {
		c.noResponders(token)
		return
	}
	res := new(pb.SendResult)
	if err := proto.Unmarshal(m.Data, res); err != nil {
		return // not an answer; the attempt timeout resends
	}
	c.mu.Lock()
	cl := c.calls[token]
	if cl != nil {
		delete(c.calls, token)
		cl.timer.Stop()
	}
	c.mu.Unlock()
	if cl != nil {
		cl.done(res)
	}
}

// noResponders schedules the next attempt of a call that found no
// processor, with exponential backoff.
func (c *Client) noResponders(token uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.calls[token]
	if cl == nil || !cl.timer.Stop() {
		return // answered, or a retry is already under way
	}
	wait := cl.backoff
	cl.backoff = min(2*cl.backoff, maxBackoff)
	cl.timer = time.AfterFunc(wait, func() { c.retry(token) })
}

// Close stops receiving answers and fails every send still waiting with
// UNAVAILABLE.
func (c *Client) Close() {
	_ = c.sub.Unsubscribe()
	c.mu.Lock()
	c.closed = true
	calls := c.calls
	c.calls = make(map[uint64]*call)
	c.mu.Unlock()
	for _, cl := range calls {
		cl.timer.Stop()
		cl.done(ErrorResult(cl.in, protocol.Reject(pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "shutting down; retry with the same client_msg_id")))
	}
}

// ErrorResult is the answer to in that reports e.
func ErrorResult(in *pb.InboundMessage, e *protocol.Error) *pb.SendResult {
	return &pb.SendResult{Room: in.GetRoom(), ClientMsgId: in.GetClientMsgId(), Error: e.Proto()}
}
