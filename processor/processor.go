// Package processor is the single writer of room logs. Rooms hash into
// partitions; a processor holds a lease on some of them (leases.go) and,
// for each, answers the sends gateways address to it (bus.SendSubject):
// it checks membership and rights, drops duplicate client message ids,
// gives each room a dense seq and appends to CHAT_MSG with per-subject
// fencing, so two writers can never assign a seq twice, even when two
// processors briefly believe they hold the same partition.
//
// Rooms are independent: each active room has its own goroutine working
// through its queue in arrival order, so a room that waits on the store
// or fails delays no other room, and many rooms' publishes are in flight
// at once. Room state (head, recent client message ids, memberships) is
// cached, and kept exact because the processor applies every membership
// change itself: known rooms keep working while the store is down.
package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/config"
	"github.com/parley-chat/parley/internal/roomlog"
	"github.com/parley-chat/parley/pkg/protocol"
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

// Config tunes the processor; zero fields take the defaults.
type Config struct {
	// Partitions is the deployment's partition count (bus.EnsureStreams).
	Partitions int
	// ID names this processor in the lease bucket (default: random).
	ID string
	// LeaseTTL is how long a partition stays with a processor that stopped
	// renewing its lease: the failover time after a crash.
	LeaseTTL time.Duration // default 10s
	// Replicas of the lease bucket (as CHAT_MSG's).
	Replicas int
	// DedupHorizon is how long a client message id is remembered: a resend
	// within it is answered with the original seq, across restarts and
	// failovers (the ids are reloaded from CHAT_MSG). CHAT_MSG must keep
	// messages at least this long.
	DedupHorizon time.Duration // default 24h
	// DedupPerRoom bounds the ids remembered per room: a room with more
	// messages than this within DedupHorizon remembers the latest ones.
	DedupPerRoom int // default 20,000
	// Rooms bounds the room states each partition keeps; idle rooms past
	// it are dropped and reloaded on their next message.
	Rooms int // default 4,096
	// MaxQueued bounds the messages received but not yet answered; past
	// it a send is answered OVERLOADED at once.
	MaxQueued int // default 20,000
	// OverloadRetry is the retry-after given with OVERLOADED.
	OverloadRetry time.Duration // default 200ms
	MaxBodySize   int
	// Attachments records the uploads messages carry; nil when media is
	// not served.
	Attachments Attachments
}

func (c Config) withDefaults() Config {
	if c.Partitions <= 0 {
		c.Partitions = bus.DefaultPartitions
	}
	if c.ID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		c.ID = hex.EncodeToString(b)
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DedupHorizon <= 0 {
		c.DedupHorizon = 24 * time.Hour
	}
	if c.DedupPerRoom <= 0 {
		c.DedupPerRoom = 20_000
	}
	if c.Rooms <= 0 {
		c.Rooms = 4096
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = 20_000
	}
	if c.OverloadRetry <= 0 {
		c.OverloadRetry = 200 * time.Millisecond
	}
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = protocol.DefaultMaxBodySize
	}
	return c
}

// Processor sequences room messages.
type Processor struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	st      Store
	log     *zap.Logger
	cfg     Config
	roomLog roomlog.Reader
	queued  atomic.Int64 // messages received and not yet answered
	stats   Stats
	workers *workers // run rooms' queues
	// sendSeconds times each send from its arrival to its answer.
	sendSeconds prometheus.Histogram
	running     atomic.Bool // taking leases; false before and once stopping

	mu    sync.Mutex
	parts map[int]*partition // the partitions this processor holds
}

// Stats counts what the processor did with the messages it received.
type Stats struct {
	Sequenced   atomic.Uint64 // appended to CHAT_MSG
	Duplicates  atomic.Uint64 // answered with the original seq
	Rejected    atomic.Uint64 // answered with a protocol error (not a member, …)
	Fenced      atomic.Uint64 // publishes refused because another writer appended first
	Unavailable atomic.Uint64 // answered UNAVAILABLE after transient failures
	Internal    atomic.Uint64 // answered INTERNAL: unexpected failures
	Overloaded  atomic.Uint64 // answered OVERLOADED past MaxQueued
}

// New creates a processor; Run starts it.
func New(nc *nats.Conn, js jetstream.JetStream, st Store, log *zap.Logger, cfg Config) *Processor {
	cfg = cfg.withDefaults()
	return &Processor{nc: nc, js: js, st: st, log: log.With(zap.String("processor", cfg.ID)), cfg: cfg,
		roomLog: roomlog.Reader{NC: nc}, parts: make(map[int]*partition), workers: newWorkers(), sendSeconds: newSendSeconds()}
}

// Stats returns the processor's counters.
func (p *Processor) Stats() *Stats { return &p.stats }

// Sequenced counts the messages this processor appended to CHAT_MSG.
func (p *Processor) Sequenced() uint64 { return p.stats.Sequenced.Load() }

// Partitions lists the partitions this processor holds now.
func (p *Processor) Partitions() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, 0, len(p.parts))
	for id := range p.parts {
		out = append(out, id)
	}
	return out
}

// Run takes its share of the partitions and serves them until ctx is done.
// Then it finishes the messages it holds, and releases its leases so that
// other processors take over at once instead of after LeaseTTL.
func (p *Processor) Run(ctx context.Context) error {
	kv, err := EnsureLeaseBucket(ctx, p.js, p.cfg.LeaseTTL, p.cfg.Replicas)
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	l := &leases{kv: kv, id: p.cfg.ID, parts: p.cfg.Partitions, ttl: p.cfg.LeaseTTL, log: p.log,
		start: p.startPartition, stop: p.stopPartition}
	p.log.Info("processor running", zap.Int("partitions", p.cfg.Partitions), zap.Duration("lease_ttl", p.cfg.LeaseTTL))
	p.running.Store(true)
	stopping := context.AfterFunc(ctx, func() { p.running.Store(false) })
	defer stopping()
	l.run(ctx)
	return nil
}

// Ready reports whether the processor takes part in holding partitions:
// an error before Run has its lease bucket, and as soon as it stops.
func (p *Processor) Ready() error {
	if !p.running.Load() {
		return errors.New("processor not running")
	}
	return nil
}

// startPartition begins serving a partition whose lease was just taken.
func (p *Processor) startPartition(id int) error {
	pt := newPartition(p, id)
	if err := pt.subscribe(); err != nil {
		return err
	}
	p.mu.Lock()
	p.parts[id] = pt
	p.mu.Unlock()
	p.log.Info("partition taken", zap.Int("partition", id))
	return nil
}

// stopPartition stops serving a partition, finishing what it received.
func (p *Processor) stopPartition(id int) {
	p.mu.Lock()
	pt := p.parts[id]
	delete(p.parts, id)
	p.mu.Unlock()
	if pt != nil {
		pt.stop()
		p.log.Info("partition released", zap.Int("partition", id))
	}
}

// BindFlags registers the processor's settings as flags of f, with the
// defaults of withDefaults.
func (c *Config) BindFlags(f *config.Flags) {
	d := Config{}.withDefaults()
	f.Duration(&c.DedupHorizon, "dedup-horizon", d.DedupHorizon, "how long a resent client_msg_id is answered with its original seq (at most --msg-max-age)")
	f.Duration(&c.LeaseTTL, "processor-lease-ttl", d.LeaseTTL, "failover time: a processor that stops renewing its partition leases loses them after this")
	f.Int(&c.MaxQueued, "processor-max-queued", d.MaxQueued, "messages a processor holds unanswered; past it sends get OVERLOADED")
}
