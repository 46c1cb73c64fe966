package processor

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/internal/bus"
)

// LeaseBucket is the KV bucket where processors announce themselves
// (member.<id>) and hold partitions (part.<n> = holder id). Every entry
// lives LeaseTTL unless renewed, so a dead processor's entries vanish and
// its partitions pass to the others.
const LeaseBucket = "PARLEY_PROCESSORS"

// EnsureLeaseBucket creates or updates the lease bucket. Leases are kept
// in memory: losing them (a restart of every NATS node) frees every
// partition at once, which fencing makes safe.
func EnsureLeaseBucket(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	return bus.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "Parley processors and the partitions they hold",
		TTL:         ttl,
		History:     1,
		Storage:     jetstream.MemoryStorage,
		Replicas:    replicas,
	})
}

// leases takes and keeps this processor's share of the partitions.
//
// Which processor should hold a partition is decided by rendezvous
// hashing over the live processors (the member.* keys), so every
// processor computes the same assignment from the same members, and a
// partition moves only when a processor joins or leaves. A processor takes
// a partition it should hold once its lease is free (Create), renews the
// leases it holds (Update at the held revision) and gives up those another
// member should hold (Delete at the held revision). Losing a renewal race
// or failing to renew for most of a TTL stops serving the partition at
// once. Leases keep processors from working against each other; fencing
// on CHAT_MSG, not the lease, is what keeps a seq from being assigned
// twice.
type leases struct {
	kv    jetstream.KeyValue
	id    string
	parts int
	ttl   time.Duration
	log   *zap.Logger
	start func(part int) error
	stop  func(part int)

	held map[int]*lease // owned by run's goroutine
	live liveMembers
}

type lease struct {
	revision  uint64
	renewedAt time.Time
}

func memberKey(id string) string { return "member." + id }
func partKey(part int) string    { return "part." + strconv.Itoa(part) }

// run keeps leases until ctx is done, then releases them all.
func (l *leases) run(ctx context.Context) {
	l.held = make(map[int]*lease)
	if err := l.live.follow(ctx, l.kv); err != nil {
		l.log.Warn("following the processors failed; this one counts alone until it works", zap.Error(err))
	}
	tick := time.NewTicker(l.ttl / 4)
	defer tick.Stop()
	for {
		l.round(ctx)
		select {
		case <-ctx.Done():
			l.releaseAll()
			return
		case <-tick.C:
		}
	}
}

// round announces this processor, then renews, gives up and takes leases
// according to the live members. Renewals go out together, so a round
// takes one round trip however many partitions this processor holds.
func (l *leases) round(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.ttl/2)
	defer cancel()
	if _, err := l.kv.Put(ctx, memberKey(l.id), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		l.log.Warn("announcing this processor failed", zap.Error(err))
	}
	owners := assign(l.parts, l.live.list(l.id, l.ttl))
	renewals := make(map[int]renewal, len(l.held))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for part, ls := range l.held {
		if owners[part] != l.id {
			l.release(ctx, part, ls)
			continue
		}
		wg.Go(func() {
			rev, err := l.kv.Update(ctx, partKey(part), []byte(l.id), ls.revision)
			mu.Lock()
			renewals[part] = renewal{rev, err}
			mu.Unlock()
		})
	}
	wg.Wait()
	for part, r := range renewals {
		l.renewed(part, r)
	}
	for part, owner := range owners {
		if _, ok := l.held[part]; !ok && owner == l.id {
			l.take(ctx, part)
		}
	}
}

// liveMembers follows the member.* keys. A processor counts as live while
// its latest announcement is younger than the lease TTL: an expired key
// makes no event, so age, not a delete, ends a member.
type liveMembers struct {
	mu   sync.Mutex
	seen map[string]time.Time // member id -> when its latest announcement was made
}

// follow watches the announcements until ctx is done.
func (m *liveMembers) follow(ctx context.Context, kv jetstream.KeyValue) error {
	m.seen = make(map[string]time.Time)
	w, err := kv.WatchFiltered(ctx, []string{"member.*"}, jetstream.MetaOnly())
	if err != nil {
		return err
	}
	go func() {
		initial := true // existing keys first, dated by the bucket; then updates, dated on arrival
		for e := range w.Updates() {
			if e == nil {
				initial = false
				continue
			}
			at := time.Now()
			if initial && e.Created().Before(at) {
				at = e.Created()
			}
			id := strings.TrimPrefix(e.Key(), "member.")
			m.mu.Lock()
			if e.Operation() == jetstream.KeyValuePut {
				m.seen[id] = at
			} else {
				delete(m.seen, id)
			}
			m.mu.Unlock()
		}
	}()
	return nil
}

// list returns the live members, self always among them.
func (m *liveMembers) list(self string, ttl time.Duration) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []string{self}
	for id, at := range m.seen {
		if id != self && time.Since(at) < ttl {
			out = append(out, id)
		}
	}
	return out
}

// assign decides which member should hold each partition: rendezvous
// hashing with bounded load. Each partition, in order, goes to the member
// with the highest hash of (member, partition) among those holding fewer
// than their fair share, so every member gets ⌈parts/members⌉ at most and
// most partitions stay put when a member joins or leaves. Every member
// computes the same result from the same member list.
func assign(parts int, members []string) []string {
	members = slices.Clone(members)
	slices.Sort(members)
	share := (parts + len(members) - 1) / len(members)
	load := make(map[string]int, len(members))
	out := make([]string, parts)
	for part := range out {
		var bestScore uint64
		for _, m := range members {
			if load[m] >= share {
				continue
			}
			if s := score(m, part); out[part] == "" || s > bestScore {
				out[part], bestScore = m, s
			}
		}
		load[out[part]]++
	}
	return out
}

func score(member string, part int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	h.Write([]byte{'/'})
	h.Write([]byte(strconv.Itoa(part)))
	return h.Sum64()
}

func (l *leases) take(ctx context.Context, part int) {
	rev, err := l.kv.Create(ctx, partKey(part), []byte(l.id))
	if errors.Is(err, jetstream.ErrKeyExists) {
		rev, err = l.reclaim(ctx, part)
	}
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			l.log.Warn("taking a partition failed", zap.Int("partition", part), zap.Error(err))
		}
		return // held by another until it gives it up or its lease expires
	}
	if err := l.start(part); err != nil {
		l.log.Error("serving a partition failed", zap.Int("partition", part), zap.Error(err))
		_ = l.kv.Delete(ctx, partKey(part), jetstream.LastRevision(rev))
		return
	}
	l.held[part] = &lease{revision: rev, renewedAt: time.Now()}
}

// reclaim takes over a lease held under this processor's own id by an
// earlier run of it (a restart with a fixed --processor-id), which would
// otherwise wait out the TTL. ErrKeyExists if another holds it.
func (l *leases) reclaim(ctx context.Context, part int) (uint64, error) {
	e, err := l.kv.Get(ctx, partKey(part))
	if err != nil {
		return 0, err
	}
	if string(e.Value()) != l.id {
		return 0, jetstream.ErrKeyExists
	}
	return l.kv.Update(ctx, partKey(part), []byte(l.id), e.Revision())
}

type renewal struct {
	revision uint64
	err      error
}

// renewed applies the outcome of renewing part's lease.
func (l *leases) renewed(part int, r renewal) {
	ls := l.held[part]
	switch {
	case r.err == nil:
		ls.revision, ls.renewedAt = r.revision, time.Now()
	case isLeaseLost(r.err):
		l.log.Warn("partition lease lost", zap.Int("partition", part), zap.Error(r.err))
		l.drop(part)
	case time.Since(ls.renewedAt) > l.ttl*3/4:
		// Unable to renew for most of a TTL: another processor may take the
		// partition any moment, so stop before it does.
		l.log.Warn("partition lease not renewed in time", zap.Int("partition", part), zap.Error(r.err))
		l.drop(part)
	default:
		l.log.Warn("renewing a partition lease failed", zap.Int("partition", part), zap.Error(r.err))
	}
}

// isLeaseLost tells a renewal refused because the lease changed hands or
// expired from one that did not reach the bucket.
func isLeaseLost(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}

// release stops serving part, then frees its lease for the member that
// should hold it.
func (l *leases) release(ctx context.Context, part int, ls *lease) {
	l.drop(part)
	if err := l.kv.Delete(ctx, partKey(part), jetstream.LastRevision(ls.revision)); err != nil {
		l.log.Warn("freeing a partition lease failed; it expires instead", zap.Int("partition", part), zap.Error(err))
	}
}

func (l *leases) drop(part int) {
	delete(l.held, part)
	l.stop(part)
}

// releaseAll gives up every lease and this processor's membership.
func (l *leases) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for part, ls := range l.held {
		l.release(ctx, part, ls)
	}
	_ = l.kv.Delete(ctx, memberKey(l.id))
}
