// Command storebench compares Parley's history stores (Pebble, and
// ScyllaDB/Cassandra) in one run, so that the results compare as ratios:
//
//   - archiving: how many messages per second the archiver moves from a
//     backlog in CHAT_MSG into the store;
//   - reading: the latency of a history page (store.Messages, newest first)
//     of the room's newest messages, and of a random older window.
//
// Every store gets the same backlog, published once to an embedded NATS
// server and drained by one durable consumer per store, and the same
// sequence of page reads. The ScyllaDB store uses a fresh keyspace
// (replication factor 1), dropped at the end.
//
//	go run ./bench/storebench -messages 200000 -rooms 100 -json results.json
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/archiver"
	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/report"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/logging"
	"github.com/parley-chat/parley/internal/natsembed"
	"github.com/parley-chat/parley/internal/store/pebblestore"
	"github.com/parley-chat/parley/internal/store/scyllastore"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// params are what a run measures; they go into the results verbatim.
type params struct {
	Stores      []string `json:"stores"`
	Messages    int      `json:"messages"`
	Rooms       int      `json:"rooms"`
	BodyBytes   int      `json:"body_bytes"`
	Page        int      `json:"page"`
	Reads       int      `json:"reads"`
	ScyllaHosts []string `json:"scylla_hosts"`
	Consistency string   `json:"scylla_consistency"`
}

// result is one store's numbers.
type result struct {
	Store         string           `json:"store"`
	Archive       time.Duration    `json:"archive_ns"`
	ArchivePerSec float64          `json:"archive_msgs_per_sec"`
	NewestPage    metrics.Snapshot `json:"newest_page"`
	OlderPage     metrics.Snapshot `json:"older_page"`
}

// output is everything a run reports.
type output struct {
	Machine report.Machine `json:"machine"`
	LoadAvg string         `json:"loadavg_at_start"` // 1, 5 and 15 minutes
	Params  params         `json:"params"`
	Results []result       `json:"results"`
}

func main() {
	if err := benchMain(); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

// benchMain parses the flags, compares the stores and prints the results.
func benchMain() error {
	var p params
	var stores, hosts, dir, jsonPath, logLevel string
	flag.StringVar(&stores, "stores", "pebble,scylla", "stores to compare, in order")
	flag.IntVar(&p.Messages, "messages", 100_000, "backlog size in CHAT_MSG (rounded down to a multiple of -rooms)")
	flag.IntVar(&p.Rooms, "rooms", 100, "rooms the backlog is spread over, round-robin")
	flag.IntVar(&p.BodyBytes, "body", 200, "text bytes per message")
	flag.IntVar(&p.Page, "page", 50, "messages per history page")
	flag.IntVar(&p.Reads, "reads", 2000, "page reads of each kind per store")
	flag.StringVar(&hosts, "scylla-hosts", "127.0.0.1:9042", "ScyllaDB/Cassandra contact points (comma separated)")
	flag.StringVar(&p.Consistency, "scylla-consistency", "LOCAL_QUORUM", "consistency of the ScyllaDB store")
	flag.StringVar(&dir, "dir", "", "directory for the NATS and Pebble data (default: a temporary one, removed at the end)")
	flag.StringVar(&jsonPath, "json", "", "also write the results as JSON to this file")
	flag.StringVar(&logLevel, "log-level", "warn", "log level of the stores, the driver and the archiver")
	flag.Parse()
	p.Stores, p.ScyllaHosts = strings.Split(stores, ","), strings.Split(hosts, ",")
	if p.Rooms <= 0 || p.Messages < p.Rooms || p.Page <= 0 || p.Messages/p.Rooms <= p.Page {
		return fmt.Errorf("need -messages >= -rooms > 0 and more than -page messages per room")
	}
	p.Messages -= p.Messages % p.Rooms
	log, err := logging.New(logLevel, "console")
	if err != nil {
		return err
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "storebench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	out, err := compare(context.Background(), p, dir, log)
	if err != nil {
		return err
	}
	printMarkdown(os.Stdout, out)
	if jsonPath == "" {
		return nil
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(jsonPath, append(b, '\n'), 0o644)
}

// compare publishes the backlog, then measures each store in turn.
func compare(ctx context.Context, p params, dir string, log *zap.Logger) (*output, error) {
	out := &output{Machine: report.DescribeMachine(), Params: p}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			out.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	ns, err := natsembed.Start(natsembed.Config{Name: "storebench", Port: -1, StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		return nil, err
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if _, err := bus.EnsureStreams(ctx, js, bus.StreamConfig{}); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "publishing %d messages over %d rooms\n", p.Messages, p.Rooms)
	if err := publishBacklog(ctx, js, p); err != nil {
		return nil, err
	}
	for _, name := range p.Stores {
		fmt.Fprintf(os.Stderr, "%s: archiving, then reading\n", name)
		st, closeStore, err := openStore(ctx, name, p, dir, log)
		if err != nil {
			return nil, err
		}
		res, err := measure(ctx, js, st, name, p, log)
		closeStore()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out.Results = append(out.Results, res)
	}
	return out, nil
}

func roomID(i int) string { return fmt.Sprintf("bench-room-%04d", i) }

// publishBacklog stores p.Messages room messages in CHAT_MSG as the
// processor would, rooms interleaved, each room's seqs dense from 1.
func publishBacklog(ctx context.Context, js jetstream.JetStream, p params) error {
	body := strings.Repeat("x", p.BodyBytes)
	for seq := 1; seq <= p.Messages/p.Rooms; seq++ {
		for r := range p.Rooms {
			room := roomID(r)
			data, err := proto.Marshal(&pb.Message{
				Room: room, Seq: uint64(seq), Sender: "bench", ClientMsgId: fmt.Sprint("c", seq),
				SentAt: time.Now().UnixMilli(), Body: &pb.Body{Text: body},
			})
			if err != nil {
				return err
			}
			m := nats.NewMsg(bus.MsgSubject(room))
			m.Header.Set(bus.HeaderSeq, fmt.Sprint(seq))
			m.Data = data
			if _, err := js.PublishMsgAsync(m); err != nil {
				return err
			}
		}
		if seq%100 == 0 { // bound the acks outstanding
			if err := publishComplete(ctx, js); err != nil {
				return err
			}
		}
	}
	return publishComplete(ctx, js)
}

func publishComplete(ctx context.Context, js jetstream.JetStream) error {
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return fmt.Errorf("publishing: %d acks outstanding after a minute", js.PublishAsyncPending())
	}
}

// openStore opens an empty store of the named kind and returns it with
// what closes it (and drops the ScyllaDB keyspace).
func openStore(ctx context.Context, name string, p params, dir string, log *zap.Logger) (store.Store, func(), error) {
	switch name {
	case "pebble":
		st, err := pebblestore.Open(filepath.Join(dir, "pebble"), log)
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	case "scylla":
		var b [6]byte
		rand.Read(b[:])
		cfg := scyllastore.Config{
			Hosts:             p.ScyllaHosts,
			Keyspace:          "parley_bench_" + hex.EncodeToString(b[:]),
			Consistency:       p.Consistency,
			ReplicationFactor: 1,
		}
		drop := func() {
			if err := dropKeyspace(cfg); err != nil {
				log.Warn("drop keyspace", zap.String("keyspace", cfg.Keyspace), zap.Error(err))
			}
		}
		err := scyllastore.Migrate(ctx, cfg, log)
		var st *scyllastore.Store
		if err == nil {
			st, err = scyllastore.Open(ctx, cfg, log)
		}
		if err != nil {
			drop() // Migrate may have created it before failing
			return nil, nil, err
		}
		return st, func() { st.Close(); drop() }, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q (want pebble or scylla)", name)
}

func dropKeyspace(cfg scyllastore.Config) error {
	c := gocql.NewCluster(cfg.Hosts...)
	c.Timeout = 30 * time.Second // DDL on a busy node
	s, err := c.CreateSession()
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).Exec()
}

// measure drains the backlog into st with an archiver of its own durable,
// then reads pages back.
func measure(ctx context.Context, js jetstream.JetStream, st store.Store, name string, p params, log *zap.Logger) (result, error) {
	res := result{Store: name}
	// The archiver's default batching, as `parley archiver` runs it.
	a := archiver.New(js, st, log, archiver.Config{Durable: "storebench-" + name})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	begin := time.Now()
	go func() { done <- a.Run(runCtx) }()
	for a.Archived() < uint64(p.Messages) {
		select {
		case err := <-done:
			stop()
			return res, fmt.Errorf("archiver stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	res.Archive = time.Since(begin)
	res.ArchivePerSec = float64(p.Messages) / res.Archive.Seconds()
	stop()
	if err := <-done; err != nil {
		return res, err
	}

	perRoom := uint64(p.Messages / p.Rooms)
	// The same seed for every store: the same rooms and windows, in order.
	rng := mrand.New(mrand.NewPCG(1, 2))
	newest := func() (string, uint64) { return roomID(rng.IntN(p.Rooms)), perRoom }
	older := func() (string, uint64) {
		return roomID(rng.IntN(p.Rooms)), uint64(p.Page) + rng.Uint64N(perRoom-uint64(p.Page))
	}
	var err error
	if res.NewestPage, err = readPages(ctx, st, p, newest); err != nil {
		return res, err
	}
	if res.OlderPage, err = readPages(ctx, st, p, older); err != nil {
		return res, err
	}
	return res, nil
}

// warmupReads are read, unrecorded, before each kind of page.
const warmupReads = 200

// readPages reads p.Reads pages, one at a time, each the p.Page messages
// of a room up to and including seq top, newest first (as the history
// service does).
func readPages(ctx context.Context, st store.HistoryStore, p params, next func() (room string, top uint64)) (metrics.Snapshot, error) {
	rec := metrics.NewRecorder()
	for i := range warmupReads + p.Reads {
		room, top := next()
		begin := time.Now()
		msgs, err := st.Messages(ctx, room, 1, top, p.Page, true)
		if err != nil {
			return metrics.Snapshot{}, err
		}
		if i >= warmupReads {
			rec.Record(time.Since(begin))
		}
		if len(msgs) != p.Page || msgs[0].Message.Seq != top {
			return metrics.Snapshot{}, fmt.Errorf("room %s page up to %d: got %d messages", room, top, len(msgs))
		}
	}
	return rec.Snapshot(), nil
}

func printMarkdown(w io.Writer, out *output) {
	m, p := out.Machine, out.Params
	fmt.Fprintf(w, "Machine: %s, %d cores (GOMAXPROCS %d), %.1f GiB, %s %s, %s; load average at start %s\n\n",
		m.CPUModel, m.Cores, m.GOMAXPROCS, float64(m.MemoryBytes)/(1<<30), m.OS, m.Kernel, m.GoVersion, out.LoadAvg)
	fmt.Fprintf(w, "Backlog: %d messages over %d rooms (%d each), %d-byte bodies. Reads: %d pages of %d per kind, one at a time. ScyllaDB consistency %s.\n\n",
		p.Messages, p.Rooms, p.Messages/p.Rooms, p.BodyBytes, p.Reads, p.Page, p.Consistency)
	fmt.Fprintln(w, "| store | archive time | archived msgs/s | newest page p50 | p99 | older page p50 | p99 |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range out.Results {
		fmt.Fprintf(w, "| %s | %.2fs | %.0f | %v | %v | %v | %v |\n", r.Store, r.Archive.Seconds(), r.ArchivePerSec,
			r.NewestPage.P50, r.NewestPage.P99, r.OlderPage.P50, r.OlderPage.P99)
	}
	if len(out.Results) < 2 {
		return
	}
	base := out.Results[0]
	ratio := func(a, b time.Duration) string { return fmt.Sprintf("%.1f×", float64(a)/float64(b)) }
	for _, r := range out.Results[1:] {
		fmt.Fprintf(w, "| %s ÷ %s | | %.2f× | %s | %s | %s | %s |\n", r.Store, base.Store, r.ArchivePerSec/base.ArchivePerSec,
			ratio(r.NewestPage.P50, base.NewestPage.P50), ratio(r.NewestPage.P99, base.NewestPage.P99),
			ratio(r.OlderPage.P50, base.OlderPage.P50), ratio(r.OlderPage.P99, base.OlderPage.P99))
	}
}
