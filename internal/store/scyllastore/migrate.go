package scyllastore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"go.uber.org/zap"

	cqlschema "github.com/parley-chat/parley/schemas/cql"
)

// Migrate creates cfg's keyspace if it is missing and applies, in order, the
// schemas/cql migrations it has not recorded yet. Running it again is a
// no-op. Run it from one place at a time (a deploy job, not every replica):
// concurrent schema changes can leave a cluster in schema disagreement.
func Migrate(ctx context.Context, cfg Config, log *zap.Logger) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	log = log.Named("scyllastore")
	if err := createKeyspace(ctx, cfg, log); err != nil {
		return err
	}
	sess, err := cfg.connect(cfg.Keyspace, log)
	if err != nil {
		return err
	}
	defer sess.Close()
	pending, err := pendingMigrations(ctx, sess, cfg.Keyspace)
	if err != nil {
		return err
	}
	for _, m := range pending {
		for _, stmt := range m.Statements {
			if err := sess.Query(stmt).WithContext(ctx).Exec(); err != nil {
				return fmt.Errorf("scyllastore: migration %s: %w\n%s", m.Name, err, stmt)
			}
		}
		err := sess.Query(insertMigration, m.Version, m.Name, time.Now()).WithContext(ctx).Exec()
		if err != nil {
			return fmt.Errorf("scyllastore: record migration %s: %w", m.Name, err)
		}
		log.Info("applied migration", zap.String("keyspace", cfg.Keyspace), zap.String("migration", m.Name))
	}
	return nil
}

const (
	insertMigration    = `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`
	selectMigrations   = `SELECT version FROM schema_migrations`
	selectSchemaTables = `SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'schema_migrations'`
)

// createKeyspace creates cfg.Keyspace unless it exists; an existing
// keyspace's replication is left alone.
func createKeyspace(ctx context.Context, cfg Config, log *zap.Logger) error {
	replication := fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", cfg.ReplicationFactor)
	if cfg.LocalDC != "" {
		dc := strings.ReplaceAll(cfg.LocalDC, "'", "''") // a CQL string literal
		replication = fmt.Sprintf("{'class': 'NetworkTopologyStrategy', '%s': %d}", dc, cfg.ReplicationFactor)
	}
	sess, err := cfg.connect("", log)
	if err != nil {
		return err
	}
	defer sess.Close()
	// The keyspace name is validated by withDefaults: safe to interpolate.
	stmt := fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s", cfg.Keyspace, replication)
	if err := sess.Query(stmt).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("scyllastore: create keyspace %q: %w", cfg.Keyspace, err)
	}
	return nil
}

// pendingMigrations returns the embedded migrations keyspace has not
// recorded, in order. The schema_migrations table is created by the first
// migration, so its absence means nothing has been applied.
func pendingMigrations(ctx context.Context, sess *gocql.Session, keyspace string) ([]cqlschema.Migration, error) {
	all, err := cqlschema.Migrations()
	if err != nil {
		return nil, err
	}
	var table string
	err = sess.Query(selectSchemaTables, keyspace).WithContext(ctx).Scan(&table)
	if errors.Is(err, gocql.ErrNotFound) {
		return all, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scyllastore: look up schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	iter := sess.Query(selectMigrations).WithContext(ctx).Iter()
	var v int
	for iter.Scan(&v) {
		applied[v] = true
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("scyllastore: read schema_migrations: %w", err)
	}
	var pending []cqlschema.Migration
	for _, m := range all {
		if !applied[m.Version] {
			pending = append(pending, m)
		}
	}
	return pending, nil
}
