package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/bus/bustest"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// outageStore is a real store that can be taken down: while down, every
// read and write the processor makes fails as a lost database would.
type outageStore struct {
	store.Store
	down atomic.Bool
}

var errStoreDown = errors.New("store unreachable")

func (s *outageStore) fail() error {
	if s.down.Load() {
		return errStoreDown
	}
	return nil
}

func (s *outageStore) Room(ctx context.Context, id string) (store.Room, error) {
	if err := s.fail(); err != nil {
		return store.Room{}, err
	}
	return s.Store.Room(ctx, id)
}

func (s *outageStore) Member(ctx context.Context, room, user string) (store.Member, error) {
	if err := s.fail(); err != nil {
		return store.Member{}, err
	}
	return s.Store.Member(ctx, room, user)
}

func (s *outageStore) Members(ctx context.Context, room, after string, limit int) ([]store.Member, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.Members(ctx, room, after, limit)
}

func (s *outageStore) AddMembers(ctx context.Context, room string, ms []store.Member) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.AddMembers(ctx, room, ms)
}

func (s *outageStore) HistoryHead(ctx context.Context, room string) (uint64, error) {
	if err := s.fail(); err != nil {
		return 0, err
	}
	return s.Store.HistoryHead(ctx, room)
}

func (s *outageStore) Blocked(ctx context.Context, a, b string) (bool, error) {
	if err := s.fail(); err != nil {
		return false, err
	}
	return s.Store.Blocked(ctx, a, b)
}

func withOutage(e *env) *outageStore {
	s := &outageStore{Store: e.st}
	e.st = s
	return s
}

func code(r *pb.SendResult) pb.ErrorCode { return r.GetError().GetCode() }

// A store outage: rooms and senders the processor knows keep being
// acked; what needs the store (a new sender, an unknown room, a room
// change) is answered UNAVAILABLE at once. A processor restarted during
// the outage knows nothing until the store is back; then every resent
// client message id is answered with its original seq, and none is stored
// twice, however long after the first send.
func TestStoreOutage(t *testing.T) {
	e := newEnv(t)
	down := withOutage(e)
	e.room("known", store.RoomGroup, map[string]store.Role{"alice": store.RoleMember, "bob": store.RoleMember})
	e.room("cold", store.RoomGroup, map[string]store.Role{"alice": store.RoleMember})
	stop := e.run()
	if r := e.send("known", "alice", "before"); r.Seq != 1 {
		t.Fatalf("before the outage: %v", r)
	}

	down.down.Store(true)
	for i := range 20 {
		if r := e.send("known", "alice", fmt.Sprintf("during-%d", i)); r.Seq != uint64(i+2) || r.Error != nil {
			t.Fatalf("known room and sender during the outage: %v", r)
		}
	}
	if r := e.send("known", "bob", "bob-1"); code(r) != pb.ErrorCode_ERROR_CODE_UNAVAILABLE {
		t.Fatalf("a sender not yet known during the outage: %v, want UNAVAILABLE", r)
	}
	if r := e.send("cold", "alice", "cold-1"); code(r) != pb.ErrorCode_ERROR_CODE_UNAVAILABLE {
		t.Fatalf("a room not yet known during the outage: %v, want UNAVAILABLE", r)
	}

	// The processor restarts while the store is still down: nothing is
	// known, nothing is stored.
	stop()
	e.run()
	if r := e.send("known", "alice", "during-3"); code(r) != pb.ErrorCode_ERROR_CODE_UNAVAILABLE {
		t.Fatalf("a resend to a restarted processor during the outage: %v, want UNAVAILABLE", r)
	}

	down.down.Store(false)
	for i := range 20 {
		r := e.send("known", "alice", fmt.Sprintf("during-%d", i))
		if r.Seq != uint64(i+2) || !r.Duplicate {
			t.Fatalf("resend of during-%d after the outage: %v, want duplicate of seq %d", i, r, i+2)
		}
	}
	if r := e.send("known", "bob", "bob-1"); r.Seq != 22 || r.Duplicate {
		t.Fatalf("bob after the outage: %v, want seq 22", r)
	}
	if got := e.storedSeqs("known"); len(got) != 22 || got[21] != 22 {
		t.Fatalf("stored seqs %v, want 1..22", got)
	}
}

// A room whose log cannot be read (a message with a broken seq header at
// its head) answers INTERNAL for each of its sends, and another room of
// the same partition is served meanwhile.
func TestFailingRoomDoesNotBlockItsPartition(t *testing.T) {
	e := newEnv(t)
	bad, good := "broken", ""
	for i := 0; good == ""; i++ {
		if id := fmt.Sprintf("ok-%d", i); bus.Partition(id, parts) == bus.Partition(bad, parts) {
			good = id
		}
	}
	e.room(bad, store.RoomGroup, map[string]store.Role{"alice": store.RoleMember})
	e.room(good, store.RoomGroup, map[string]store.Role{"alice": store.RoleMember})
	m := nats.NewMsg(bus.MsgSubject(bad))
	m.Data, _ = proto.Marshal(&pb.Message{Room: bad, Seq: 1, Sender: "alice", ClientMsgId: "x"})
	m.Header.Set(bus.HeaderSeq, "not-a-number")
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	e.run()
	for i := range 3 {
		if r := e.send(bad, "alice", fmt.Sprintf("b%d", i)); code(r) != pb.ErrorCode_ERROR_CODE_INTERNAL {
			t.Fatalf("send to the broken room: %v, want INTERNAL", r)
		}
		if r := e.send(good, "alice", fmt.Sprintf("g%d", i)); r.Seq != uint64(i+1) {
			t.Fatalf("send to %s in the same partition: %v", good, r)
		}
	}
}

// Two processors split the partitions between them, every partition held
// by exactly one, and keep that split: no partition moves and no publish
// is fenced while both run.
func TestTwoProcessorsShareStably(t *testing.T) {
	e := newEnv(t)
	const ttl = 3 * time.Second
	a, _ := e.start(Config{LeaseTTL: ttl})
	b, _ := e.start(Config{LeaseTTL: ttl})
	split := func() (pa, pb []int) {
		pa, pb = a.Partitions(), b.Partitions()
		slices.Sort(pa)
		slices.Sort(pb)
		return pa, pb
	}
	deadline := time.Now().Add(10 * ttl)
	for {
		pa, pb := split()
		if len(pa)+len(pb) == parts && len(pa) > 0 && len(pb) > 0 && !slices.ContainsFunc(pa, func(p int) bool { return slices.Contains(pb, p) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions not split: %v and %v", pa, pb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	pa, pb := split()
	rooms := make([]string, 8)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("room-%d", i)
		e.room(rooms[i], store.RoomGroup, map[string]store.Role{"alice": store.RoleMember})
	}
	for i := range 5 * int(ttl/(100*time.Millisecond)) {
		for _, room := range rooms {
			if r := e.send(room, "alice", fmt.Sprintf("m%d", i)); r.Error != nil {
				t.Fatalf("send: %v", r)
			}
		}
		time.Sleep(20 * time.Millisecond)
		if qa, qb := split(); !slices.Equal(pa, qa) || !slices.Equal(pb, qb) {
			t.Fatalf("partitions moved: %v/%v, then %v/%v", pa, pb, qa, qb)
		}
	}
	if f := a.Stats().Fenced.Load() + b.Stats().Fenced.Load(); f != 0 {
		t.Fatalf("%d publishes fenced between two stable processors", f)
	}
	if n := a.Sequenced() + b.Sequenced(); n != uint64(len(rooms)*5*int(ttl/(100*time.Millisecond))) {
		t.Fatalf("%d messages sequenced", n)
	}
}

// Past MaxQueued a send is answered OVERLOADED with a retry-after, at
// once; a sender retrying with the same ids gets every message stored
// exactly once, in a dense seq.
func TestOverloadAnswersAndLosesNothing(t *testing.T) {
	e := newEnv(t)
	slow := &slowStore{Store: e.st, delay: 20 * time.Millisecond}
	e.st = slow
	e.room("busy", store.RoomGroup, map[string]store.Role{})
	const senders, each = 20, 5
	for s := range senders {
		if err := e.st.AddMembers(context.Background(), "busy", []store.Member{{User: fmt.Sprintf("u%d", s), Role: store.RoleMember}}); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := e.start(Config{MaxQueued: 4})
	var overloaded atomic.Int64
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				cmid := fmt.Sprintf("u%d-%d", s, i)
				for {
					r := e.send("busy", fmt.Sprintf("u%d", s), cmid)
					if code(r) != pb.ErrorCode_ERROR_CODE_OVERLOADED {
						if r.Error != nil {
							t.Errorf("%s: %v", cmid, r)
						}
						break
					}
					if r.Error.RetryAfterMs == 0 {
						t.Errorf("OVERLOADED without a retry-after")
					}
					overloaded.Add(1)
					time.Sleep(time.Duration(r.Error.RetryAfterMs) * time.Millisecond / 10)
				}
			}
		}()
	}
	wg.Wait()
	if overloaded.Load() == 0 || p.Stats().Overloaded.Load() == 0 {
		t.Fatal("no send was answered OVERLOADED")
	}
	seqs := e.storedSeqs("busy")
	if len(seqs) != senders*each {
		t.Fatalf("%d messages stored, want %d", len(seqs), senders*each)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("stored seqs %v are not dense", seqs)
		}
	}
}

// slowStore answers membership reads late, so sends pile up.
type slowStore struct {
	store.Store
	delay time.Duration
}

func (s *slowStore) Member(ctx context.Context, room, user string) (store.Member, error) {
	time.Sleep(s.delay)
	return s.Store.Member(ctx, room, user)
}

// A deployment's partition count is fixed when CHAT_MSG is made: a
// process started with another count is refused, naming the right one.
func TestPartitionCountMismatchRefused(t *testing.T) {
	_, js := bustest.WithStreams(t, parts)
	got, err := bus.EnsureStreams(context.Background(), js, bus.StreamConfig{})
	if err != nil || got != parts {
		t.Fatalf("unspecified count: %d, %v; want the stored %d", got, err, parts)
	}
	_, err = bus.EnsureStreams(context.Background(), js, bus.StreamConfig{Partitions: parts * 2})
	if !errors.Is(err, bus.ErrPartitions) || !strings.Contains(err.Error(), fmt.Sprintf("--partitions %d", parts)) {
		t.Fatalf("another count: %v, want a refusal naming --partitions %d", err, parts)
	}
}
