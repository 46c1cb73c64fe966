// Package processor is the single writer of room logs. It consumes CHAT_IN
// one partition at a time, checks membership and rights, drops duplicate
// client message ids, assigns each room a dense seq and appends to CHAT_MSG
// with per-subject fencing, so two writers can never assign a seq twice.
package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/pkg/bus"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/parley-chat/parley/pkg/roomlog"
	"github.com/parley-chat/parley/pkg/store"
)

// Store is what the processor uses: rooms and memberships, which it alone
// changes once a room exists (room changes are sequenced events), and the
// archived head for rooms whose messages have aged out of CHAT_MSG.
type Store interface {
	store.RoomStore
	HistoryHead(ctx context.Context, room string) (uint64, error)
	// Blocked reports whether either user has blocked the other; it
	// closes direct rooms between them.
	Blocked(ctx context.Context, a, b string) (bool, error)
}

// Config tunes the processor.
type Config struct {
	Partitions int
	// Group is the JetStream priority group; the server pins one processor
	// per partition consumer and fails over when it stops pulling.
	Group string
	// PinnedTTL is how long a silent pinned processor keeps its partitions.
	PinnedTTL time.Duration
	// AckWait is how long a delivered message waits for an ack before it
	// is redelivered (to whichever processor is pinned then).
	AckWait time.Duration
	// RoomCache bounds the rooms whose head each partition keeps in memory.
	RoomCache int
	// DedupCache bounds the recent client message ids each partition keeps
	// beyond CHAT_MSG's own dedup window.
	DedupCache  int
	MaxBodySize int
}

func (c Config) withDefaults() Config {
	if c.Partitions <= 0 {
		c.Partitions = bus.DefaultPartitions
	}
	if c.Group == "" {
		c.Group = "parley"
	}
	if c.PinnedTTL <= 0 {
		c.PinnedTTL = 10 * time.Second
	}
	if c.AckWait <= 0 {
		c.AckWait = 10 * time.Second
	}
	if c.RoomCache <= 0 {
		c.RoomCache = 2048
	}
	if c.DedupCache <= 0 {
		c.DedupCache = 8192
	}
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = protocol.DefaultMaxBodySize
	}
	return c
}

// Processor sequences room messages.
type Processor struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	st        Store
	log       *zap.Logger
	cfg       Config
	subjects  bus.Subjects
	roomLog   roomlog.Reader
	sequenced atomic.Uint64
}

// New creates a processor; Run starts it.
func New(nc *nats.Conn, js jetstream.JetStream, st Store, log *zap.Logger, cfg Config) *Processor {
	cfg = cfg.withDefaults()
	subjects := bus.Subjects{Partitions: cfg.Partitions}
	return &Processor{nc: nc, js: js, st: st, log: log, cfg: cfg, subjects: subjects, roomLog: roomlog.Reader{NC: nc, Subjects: subjects}}
}

// Sequenced counts the messages this processor appended to CHAT_MSG.
func (p *Processor) Sequenced() uint64 { return p.sequenced.Load() }

// ConsumerName is the durable CHAT_IN consumer of a partition.
func ConsumerName(part int) string { return fmt.Sprintf("processor-%d", part) }

// Run consumes every partition until ctx is done. Messages in flight are
// finished and acked; partitions are then unpinned so another processor
// takes over at once instead of after PinnedTTL.
func (p *Processor) Run(ctx context.Context) error {
	in, err := p.js.Stream(ctx, bus.StreamIn)
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	consumers := make([]jetstream.Consumer, p.cfg.Partitions)
	for part := range consumers {
		c, err := in.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:        ConsumerName(part),
			Description:    fmt.Sprintf("Parley processor, partition %d", part),
			FilterSubject:  p.subjects.InPartition(part),
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        p.cfg.AckWait,
			MaxAckPending:  512,
			MaxDeliver:     -1,
			PriorityGroups: []string{p.cfg.Group},
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PinnedTTL:      p.cfg.PinnedTTL,
		})
		if err != nil {
			return fmt.Errorf("processor: consumer %d: %w", part, err)
		}
		consumers[part] = c
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(consumers))
	for part, c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.runPartition(ctx, part, c); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	unpinCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for part := range consumers {
		// Best effort: a failed unpin only delays failover to PinnedTTL.
		_ = in.UnpinConsumer(unpinCtx, ConsumerName(part), p.cfg.Group)
	}
	return errors.Join(drain(errs)...)
}

func drain(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// runPartition handles one partition's messages strictly one at a time, so
// a room's seq order is CHAT_IN's arrival order.
func (p *Processor) runPartition(ctx context.Context, part int, c jetstream.Consumer) error {
	it, err := c.Messages(jetstream.PullPriorityGroup(p.cfg.Group), jetstream.PullMaxMessages(128))
	if err != nil {
		return fmt.Errorf("processor: partition %d: %w", part, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	w := &partitionWriter{
		p:     p,
		part:  part,
		rooms: newLRU[string, *roomState](max(16, p.cfg.RoomCache/p.cfg.Partitions)),
		dedup: newLRU[string, uint64](p.cfg.DedupCache),
	}
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			p.log.Warn("partition pull failed", zap.Int("partition", part), zap.Error(err))
			continue
		}
		w.handle(ctx, msg)
	}
}

// roomState is what a partition knows about a room it writes.
type roomState struct {
	kind      store.RoomKind
	pair      []string // a direct room's two members (fixed for its life)
	seq       uint64   // last assigned room seq
	streamSeq uint64   // CHAT_MSG sequence of that message (0: none in stream)
}

type partitionWriter struct {
	p     *Processor
	part  int
	rooms *lru[string, *roomState]
	dedup *lru[string, uint64] // room\x00sender\x00client_msg_id -> seq
}

// errTransient marks failures worth retrying (bus or store unavailable).
type errTransient struct{ err error }

func (e errTransient) Error() string { return e.err.Error() }
func (e errTransient) Unwrap() error { return e.err }

func (w *partitionWriter) handle(ctx context.Context, msg jetstream.Msg) {
	log := w.p.log
	in := new(pb.InboundMessage)
	if err := proto.Unmarshal(msg.Data(), in); err != nil || in.GetRoom() != bus.RoomFromSubject(msg.Subject()) {
		log.Error("dropping undecodable CHAT_IN message", zap.String("subject", msg.Subject()), zap.Error(err))
		_ = msg.Term()
		return
	}
	var res *pb.SendResult
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		var err error
		res, err = w.sequence(ctx, in)
		if err == nil {
			break
		}
		log.Warn("sequencing failed, retrying", zap.String("room", in.Room), zap.Error(err))
		select {
		case <-ctx.Done():
			// Not acked: redelivered to the processor pinned next.
			return
		case <-time.After(backoff):
		}
	}
	// Answer before acking: both go out on one connection, in order, so
	// an ack the server saw implies the answer was sent. A processor that
	// dies in between leaves the message unacked; the next one finds it a
	// duplicate and answers again.
	res.SessionId, res.RequestId = in.SessionId, in.RequestId
	if in.ReplySubject != "" {
		data, err := proto.Marshal(res)
		if err == nil {
			err = w.p.nc.Publish(in.ReplySubject, data)
		}
		if err != nil {
			log.Warn("answer not sent, leaving the message for redelivery", zap.Error(err))
			return
		}
	}
	if err := msg.Ack(); err != nil {
		// Redelivery is harmless: the message id dedups it.
		log.Warn("ack failed", zap.Error(err))
	}
}

func reject(in *pb.InboundMessage, e *pb.Error) *pb.SendResult {
	return &pb.SendResult{Room: in.Room, ClientMsgId: in.ClientMsgId, Error: e}
}

// sequence decides one inbound message. A returned error is transient; a
// rejection is a result.
func (w *partitionWriter) sequence(ctx context.Context, in *pb.InboundMessage) (*pb.SendResult, error) {
	change := isRoomChange(in.Kind)
	if !change {
		if e := protocol.ValidateSend(sendOf(in), w.p.cfg.MaxBodySize); e != nil {
			return reject(in, e), nil
		}
	}
	key := in.Room + "\x00" + in.Sender + "\x00" + in.ClientMsgId
	if seq, ok := w.dedup.get(key); ok {
		return duplicate(in, seq), nil
	}
	notFound := reject(in, protocol.Errorf(pb.ErrorCode_ERROR_CODE_ROOM_NOT_FOUND, "room %s does not exist or you are not a member", in.Room))
	member, err := w.p.st.Member(ctx, in.Room, in.Sender)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, errTransient{err}
	}
	if !found && !change {
		return notFound, nil
	}
	for attempt := 0; ; attempt++ {
		st, err := w.room(ctx, in.Room)
		if errors.Is(err, store.ErrNotFound) {
			return notFound, nil
		} else if err != nil {
			return nil, err
		}
		var e *pb.Error
		if change {
			e, err = w.applyRoomChange(ctx, in, member, found, st)
		} else {
			e, err = w.checkSend(ctx, in, member, st)
		}
		if e != nil || err != nil {
			return reject(in, e), err
		}
		res, err := w.append(ctx, in, st, key)
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) && attempt < 8 {
			// Fenced: another writer appended to this room, or our view is
			// stale. Reload from the leader; never reuse a seq.
			w.p.log.Info("fenced, reloading room", zap.String("room", in.Room), zap.Uint64("seq", st.seq))
			w.rooms.remove(in.Room)
			continue
		}
		return res, err
	}
}

// checkSend applies the room's rules to a client message.
func (w *partitionWriter) checkSend(ctx context.Context, in *pb.InboundMessage, member store.Member, st *roomState) (*pb.Error, error) {
	if st.kind == store.RoomChannel && !canManage(member.Role) && in.Kind != pb.MessageKind_MESSAGE_KIND_REACTION_ADD && in.Kind != pb.MessageKind_MESSAGE_KIND_REACTION_REMOVE {
		return forbidden("only owners and admins post to channel %s", in.Room), nil
	}
	if st.kind == store.RoomDirect && len(st.pair) == 2 {
		blocked, err := w.p.st.Blocked(ctx, st.pair[0], st.pair[1])
		if err != nil {
			return nil, errTransient{err}
		}
		if blocked {
			return forbidden("this conversation is blocked"), nil
		}
	}
	return w.checkReference(ctx, in, member.Role, st)
}

// sendOf is the client request an inbound message carries.
func sendOf(in *pb.InboundMessage) *pb.SendMessage {
	return &pb.SendMessage{Room: in.Room, ClientMsgId: in.ClientMsgId, Body: in.Body, Kind: in.Kind,
		RefSeq: in.RefSeq, Reaction: in.Reaction, ReplyToSeq: in.ReplyToSeq, Mentions: in.Mentions}
}

// append publishes the next message of a room to CHAT_MSG.
func (w *partitionWriter) append(ctx context.Context, in *pb.InboundMessage, st *roomState, key string) (*pb.SendResult, error) {
	m := &pb.Message{
		Room:        in.Room,
		Seq:         st.seq + 1,
		Sender:      in.Sender,
		ClientMsgId: in.ClientMsgId,
		SentAt:      time.Now().UnixMilli(),
		Body:        in.Body,
		Kind:        in.Kind,
		RefSeq:      in.RefSeq,
		Reaction:    in.Reaction,
		ReplyToSeq:  in.ReplyToSeq,
		Mentions:    in.Mentions,
		TargetUsers: in.TargetUsers,
		Role:        in.Role,
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := nats.NewMsg(w.p.subjects.Msg(in.Room))
	out.Data = data
	out.Header.Set(jetstream.MsgIDHeader, key)
	out.Header.Set(bus.HeaderSeq, strconv.FormatUint(m.Seq, 10))
	if m.Kind == pb.MessageKind_MESSAGE_KIND_MEMBER_LEFT || m.Kind == pb.MessageKind_MESSAGE_KIND_MEMBER_REMOVED {
		// Gateways drop these users' subscriptions when the event passes.
		for _, u := range m.TargetUsers {
			out.Header.Add(bus.HeaderLeaves, u)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ack, err := w.p.js.PublishMsg(pctx, out, jetstream.WithExpectLastSequencePerSubject(st.streamSeq))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) {
			return nil, err
		}
		return nil, errTransient{err}
	}
	if ack.Duplicate {
		// Stored before (a redelivery after a crash, or a resend within
		// the stream's dedup window): answer with the original seq.
		orig, err := bus.MsgAt(ctx, w.p.nc, bus.StreamMsg, ack.Sequence)
		if err != nil {
			return nil, errTransient{err}
		}
		seq, _ := strconv.ParseUint(orig.Header.Get(bus.HeaderSeq), 10, 64)
		w.dedup.put(key, seq)
		return duplicate(in, seq), nil
	}
	st.seq, st.streamSeq = m.Seq, ack.Sequence
	w.dedup.put(key, m.Seq)
	w.p.sequenced.Add(1)
	w.p.notify(m, st.kind)
	return &pb.SendResult{Room: in.Room, ClientMsgId: in.ClientMsgId, Seq: m.Seq, SentAt: m.SentAt}, nil
}

// duplicate answers a resent client message id with its original seq.
func duplicate(in *pb.InboundMessage, seq uint64) *pb.SendResult {
	return &pb.SendResult{Room: in.Room, ClientMsgId: in.ClientMsgId, Seq: seq, Duplicate: true}
}

// room returns a room's state, loading it on first use or after fencing:
// the last message on the room's subject from the stream leader (Direct Get
// may lag), or the archived head if the stream no longer holds any.
func (w *partitionWriter) room(ctx context.Context, room string) (*roomState, error) {
	if st, ok := w.rooms.get(room); ok {
		return st, nil
	}
	meta, err := w.p.st.Room(ctx, room)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, errTransient{err}
	}
	st := &roomState{kind: meta.Kind}
	if meta.Kind == store.RoomDirect {
		members, err := w.p.st.Members(ctx, room, "", 2)
		if err != nil {
			return nil, errTransient{err}
		}
		for _, m := range members {
			st.pair = append(st.pair, m.User)
		}
	}
	last, err := bus.LastForSubject(ctx, w.p.nc, bus.StreamMsg, w.p.subjects.Msg(room))
	switch {
	case err == nil:
		st.streamSeq = last.Sequence
		st.seq, err = strconv.ParseUint(last.Header.Get(bus.HeaderSeq), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("room %s: bad %s header at stream seq %d: %w", room, bus.HeaderSeq, last.Sequence, err)
		}
	case errors.Is(err, bus.ErrNotFound):
		if st.seq, err = w.p.st.HistoryHead(ctx, room); err != nil {
			return nil, errTransient{err}
		}
	default:
		return nil, errTransient{err}
	}
	w.rooms.put(room, st)
	return st, nil
}
