package scyllastore

import (
	"context"
	"errors"
	"fmt"

	"github.com/gocql/gocql"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/pkg/store"
)

// Store is a store.Store on a ScyllaDB or Cassandra cluster. It is safe for
// concurrent use.
type Store struct {
	s *gocql.Session
}

var _ store.Store = (*Store)(nil)

// Open connects to cfg's keyspace, which Migrate must have brought up to the
// current schema.
func Open(ctx context.Context, cfg Config, log *zap.Logger) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log = log.Named("scyllastore")
	sess, err := cfg.connect(cfg.Keyspace, log)
	if err != nil {
		return nil, err
	}
	st := &Store{s: sess}
	pending, err := pendingMigrations(ctx, sess, cfg.Keyspace)
	if err == nil && len(pending) > 0 {
		err = fmt.Errorf("scyllastore: keyspace %q lacks migration %s: run Migrate", cfg.Keyspace, pending[0].Name)
	}
	if err != nil {
		sess.Close()
		return nil, err
	}
	log.Info("connected", zap.Strings("hosts", cfg.Hosts), zap.String("keyspace", cfg.Keyspace),
		zap.String("consistency", cfg.Consistency), zap.String("local_dc", cfg.LocalDC))
	return st, nil
}

// Close closes every connection.
func (st *Store) Close() error {
	st.s.Close()
	return nil
}

// query prepares an idempotent request. Statements are constants so the
// driver prepares each once and routes it by token.
func (st *Store) query(ctx context.Context, stmt string, args ...any) *gocql.Query {
	return st.s.Query(stmt, args...).WithContext(ctx).Idempotent(true)
}

// scanOne reads the single row of q into dest; store.ErrNotFound if none.
func scanOne(q *gocql.Query, dest ...any) error {
	err := q.Scan(dest...)
	if errors.Is(err, gocql.ErrNotFound) {
		return store.ErrNotFound
	}
	return err
}

// Limits of one request.
const (
	// readPageSize caps the rows of one page; longer reads follow the
	// driver's page state.
	readPageSize = 1000
	// An UNLOGGED batch holds at most maxBatchRows rows and, unless a single
	// row is larger, maxBatchBytes: far below the server's mutation size
	// limit (half a commitlog segment) and its frame size limit.
	maxBatchRows  = 500
	maxBatchBytes = 1 << 20
	// writeConcurrency bounds the requests one call has in flight.
	writeConcurrency = 32
)

// scanAll feeds every row of q to fn, page after page.
func scanAll(q *gocql.Query, fn func(gocql.Scanner) error) error {
	sc := q.Iter().Scanner()
	for sc.Next() {
		if err := fn(sc); err != nil {
			_ = sc.Err() // releases the iterator; fn's error is the one to report
			return err
		}
	}
	return sc.Err()
}

// row is one statement's bind values and roughly how many bytes they carry.
type row struct {
	args []any
	size int
}

// writePartition writes rows of stmt, which must all belong to one
// partition, as UNLOGGED batches. A single-partition batch is applied as one
// mutation, atomically and in isolation, with no batchlog; batches spanning
// partitions are never built.
func (st *Store) writePartition(ctx context.Context, stmt string, rows []row) error {
	for len(rows) > 0 {
		n, size := 0, 0
		for n < len(rows) && n < maxBatchRows && (n == 0 || size+rows[n].size <= maxBatchBytes) {
			size += rows[n].size
			n++
		}
		b := st.s.Batch(gocql.UnloggedBatch).WithContext(ctx)
		for _, r := range rows[:n] {
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: stmt, Args: r.args, Idempotent: true})
		}
		if err := b.Exec(); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}
