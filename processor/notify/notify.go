// Package notify tells a push bridge about messages for users who have no
// device online. It is its own durable consumer of CHAT_MSG ("notifier"),
// apart from the sequencer: its store and presence lookups never hold up
// sequencing, and a slow or failing lookup costs a push, never a message.
//
// A notification (pb.Notification on notify.<user>) goes to the other
// member of a direct room and to each member a text message mentions,
// when that user is offline. Delivery is at least once: a batch is acked
// (AckAll, one ack for the whole batch) after its lookups finished, so a
// crash repeats a batch's pushes rather than losing them; a lookup that
// keeps failing is logged, counted and skipped.
//
// The consumer starts at the stream's tail when first created: deploying
// the notifier does not push the whole history.
package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/ops"
	"github.com/parley-chat/parley/internal/presence"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// Store is what the notifier reads: a room's kind and its members.
type Store interface {
	Room(ctx context.Context, id string) (store.Room, error)
	Member(ctx context.Context, room, user string) (store.Member, error)
	Members(ctx context.Context, room, afterUser string, limit int) ([]store.Member, error)
}

// Presence says which users have a device online.
type Presence interface {
	States(ctx context.Context, users []string) (map[string]presence.State, error)
}

// Config tunes a Notifier; zero fields take the defaults.
type Config struct {
	Durable string // default "notifier"; instances sharing it share the work
	// Lookups bounds the messages of one batch looked up at once.
	Lookups int // default 32
	// KindCache bounds the rooms whose kind is remembered (a kind never
	// changes, so the cache is exact).
	KindCache int // default 100,000
}

func (c Config) withDefaults() Config {
	if c.Durable == "" {
		c.Durable = "notifier"
	}
	if c.Lookups <= 0 {
		c.Lookups = 32
	}
	if c.KindCache <= 0 {
		c.KindCache = 100_000
	}
	return c
}

// Notification reasons.
const (
	reasonDirect  = "direct"
	reasonMention = "mention"
)

const (
	lookupTimeout = 5 * time.Second
	lookupTries   = 3
	previewLen    = 140 // bytes of text a notification carries at most
	batchSize     = 256
	batchWait     = 20 * time.Millisecond
)

// Notifier is the push-notification consumer.
type Notifier struct {
	nc       *nats.Conn
	st       Store
	presence Presence
	log      *zap.Logger
	cfg      Config
	cons     *bus.BatchConsumer

	kindsMu sync.Mutex
	kinds   map[string]store.RoomKind

	sent, failed atomic.Uint64
}

// New returns a notifier publishing on nc; Run starts it.
func New(js jetstream.JetStream, nc *nats.Conn, st Store, pr Presence, log *zap.Logger, cfg Config) *Notifier {
	cfg = cfg.withDefaults()
	n := &Notifier{nc: nc, st: st, presence: pr, log: log, cfg: cfg, kinds: make(map[string]store.RoomKind)}
	n.cons = &bus.BatchConsumer{
		JS:     js,
		Stream: bus.StreamMsg,
		Config: jetstream.ConsumerConfig{
			Durable:       cfg.Durable,
			Description:   "Parley notifier: pushes for offline users",
			AckPolicy:     jetstream.AckAllPolicy,
			DeliverPolicy: jetstream.DeliverNewPolicy,
			// Past the lookups of a batch with the store down.
			AckWait:       2 * time.Minute,
			MaxAckPending: 4 * batchSize,
		},
		BatchSize: batchSize,
		BatchWait: batchWait,
		Handle:    n.handle,
		Log:       log,
	}
	return n
}

// Run notifies until ctx is done.
func (n *Notifier) Run(ctx context.Context) error { return n.cons.Run(ctx) }

// Ready reports whether the notifier consumes CHAT_MSG.
func (n *Notifier) Ready() error {
	if !n.cons.Running() {
		return errors.New("notifier not running")
	}
	return nil
}

var (
	descSent   = ops.Desc("notifications_sent_total", "Push notifications published for offline users.")
	descFailed = ops.Desc("notifications_failed_total", "Messages whose notifications were given up after repeated lookup failures.")
)

// Describe implements prometheus.Collector.
func (n *Notifier) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(n, ch) }

// Collect implements prometheus.Collector.
func (n *Notifier) Collect(ch chan<- prometheus.Metric) {
	ops.Count(ch, descSent, n.sent.Load())
	ops.Count(ch, descFailed, n.failed.Load())
}

// handle looks up the messages of a batch that may need a push, at most
// cfg.Lookups at once, then acks the batch with its last message.
func (n *Notifier) handle(ctx context.Context, batch []jetstream.Msg) {
	slots := make(chan struct{}, n.cfg.Lookups)
	var wg sync.WaitGroup
	for _, m := range batch {
		msg := new(pb.Message)
		if err := proto.Unmarshal(m.Data(), msg); err != nil {
			n.log.Warn("skipping a message that does not decode", zap.String("subject", m.Subject()), zap.Error(err))
			continue
		}
		if msg.Kind != pb.MessageKind_MESSAGE_KIND_TEXT || !n.mayNotify(msg) {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			n.notifyWithRetry(ctx, msg)
		})
	}
	wg.Wait()
	if err := batch[len(batch)-1].Ack(); err != nil {
		n.log.Warn("acking a batch; its pushes will repeat", zap.Error(err))
	}
}

func (n *Notifier) notifyWithRetry(ctx context.Context, m *pb.Message) {
	var err error
	var bo bus.Backoff
	for try := range lookupTries {
		if try > 0 && !bo.Wait(ctx) {
			break
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		err = n.notify(lctx, m)
		cancel()
		if err == nil {
			return
		}
	}
	n.failed.Add(1)
	n.log.Warn("notifications not sent", zap.String("room", m.Room), zap.Uint64("seq", m.Seq), zap.Error(err))
}

// notify publishes the notifications one message calls for.
func (n *Notifier) notify(ctx context.Context, m *pb.Message) error {
	reasons := make(map[string]string) // user -> why
	for _, u := range m.Mentions {
		if u == m.Sender || reasons[u] != "" {
			continue
		}
		_, err := n.st.Member(ctx, m.Room, u)
		switch {
		case err == nil:
			reasons[u] = reasonMention
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	kind, err := n.kind(ctx, m.Room)
	if err != nil {
		return err
	}
	if kind == store.RoomDirect {
		members, err := n.st.Members(ctx, m.Room, "", 2)
		if err != nil {
			return err
		}
		for _, mb := range members {
			if mb.User != m.Sender {
				reasons[mb.User] = reasonDirect
			}
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	users := make([]string, 0, len(reasons))
	for u := range reasons {
		users = append(users, u)
	}
	states, err := n.presence.States(ctx, users)
	if err != nil {
		// Presence unknown: a needless push beats a lost one.
		n.log.Warn("presence unavailable, notifying everyone", zap.Error(err))
	}
	for u, reason := range reasons {
		if states[u].Online {
			continue
		}
		data, err := proto.Marshal(&pb.Notification{
			User: u, Room: m.Room, Seq: m.Seq, Sender: m.Sender, Reason: reason, Preview: preview(m.GetBody().GetText()),
		})
		if err == nil {
			err = n.nc.Publish(bus.Notifications(u), data)
		}
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		n.sent.Add(1)
	}
	return nil
}

// mayNotify is false for a message known to need no push without a
// lookup: no mentions, in a room cached as not direct (most messages, so
// they cost no goroutine).
func (n *Notifier) mayNotify(m *pb.Message) bool {
	if len(m.Mentions) > 0 {
		return true
	}
	n.kindsMu.Lock()
	k, ok := n.kinds[m.Room]
	n.kindsMu.Unlock()
	return !ok || k == store.RoomDirect
}

// kind returns a room's kind, from the cache when known. A full cache is
// cleared: kinds are cheap to reload, and this keeps memory bounded.
func (n *Notifier) kind(ctx context.Context, room string) (store.RoomKind, error) {
	n.kindsMu.Lock()
	k, ok := n.kinds[room]
	n.kindsMu.Unlock()
	if ok {
		return k, nil
	}
	r, err := n.st.Room(ctx, room)
	if err != nil {
		return "", err
	}
	n.kindsMu.Lock()
	if len(n.kinds) >= n.cfg.KindCache {
		clear(n.kinds)
	}
	n.kinds[room] = r.Kind
	n.kindsMu.Unlock()
	return r.Kind, nil
}

// preview cuts text to previewLen bytes at most, on a character boundary.
func preview(text string) string {
	if len(text) <= previewLen {
		return text
	}
	cut := previewLen
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut]
}
