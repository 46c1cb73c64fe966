// Package scyllastore is Parley's cluster store: store.Store on ScyllaDB (or
// Apache Cassandra, which speaks the same CQL) through the gocql driver,
// replaced in go.mod by the scylladb/gocql fork.
//
// # Schema
//
// The tables are created by the migrations in schemas/cql, applied by
// Migrate and recorded in schema_migrations; Open refuses a keyspace with
// migrations pending.
//
//   - messages: PRIMARY KEY ((room_id, bucket), seq), seq DESC. A room's
//     history is cut into partitions of BucketSize consecutive seqs, so
//     partitions stay bounded however long a room lives, and a range read
//     touches exactly the buckets it spans. The value is the parley.v1.Message
//     protobuf plus its CHAT_MSG stream sequence.
//   - room_heads: the highest archived seq per room, written USING TIMESTAMP
//     <seq> so the highest seq wins in any write order: monotonic without
//     lightweight transactions. Messages stops at the head, so it never
//     scans buckets that cannot hold anything.
//   - rooms; room_members ((room_id), user_id), one partition per room read
//     in pages, authoritative for access; user_rooms ((user_id), room_id),
//     its reverse index.
//   - users by id; handle_claims ((handle), user_id), where registrants
//     claim a handle and the one that reads back no rival confirms it
//     (unique handles without LWT: see accounts.go); handle_search, by
//     the first three characters of handles; sessions ((user_id),
//     session_id), with TTLs ending at each session's expiry.
//   - relations, one row per pair of users (friendship, requests, blocks),
//     authoritative; user_relations ((user_id), list, other_id), each
//     user's listings, written with the pair's row under one timestamp.
//
// Every write is an idempotent upsert or delete, so requests are retried
// (on another replica; see Config for why never speculatively). Batches are UNLOGGED and never span
// partitions; there are no lightweight transactions and no counters.
// CreateRoom's "already exists" is a read before the write (see its
// comment for why that is enough).
//
// # Consistency
//
// Reads and writes default to LOCAL_QUORUM: with RF 3 per datacenter a
// read sees every acknowledged write (2 + 2 > 3) while one replica per DC
// may be down, and no request waits on another datacenter. A single node
// with RF 1 (tests) works with LOCAL_QUORUM or ONE. Config.Consistency
// overrides it for every request.
//
// # Connecting to a ScyllaDB cluster
//
//	scyllastore.Config{
//		Hosts:             []string{"scylla-0.scylla:9042", "scylla-1.scylla:9042"},
//		LocalDC:           "dc1", // DC-aware routing; NetworkTopologyStrategy keyspace
//		Keyspace:          "parley",
//		ReplicationFactor: 3, // used only when Migrate creates the keyspace
//		TLS:               true,
//		Username:          "parley",
//		Password:          os.Getenv("SCYLLA_PASSWORD"),
//	}
//
// Give contact points on the CQL port (9042). The scylladb/gocql fork then
// learns each node's shard-aware port (19042, 19142 with TLS) and opens one
// connection per shard, so that every request reaches the CPU core owning
// its partition; let clients reach those ports too. Requests are routed
// token-aware: straight to a replica of their partition, in LocalDC when
// one is set.
//
// Authentication: Username and Password select PasswordAuthenticator.
// TLS: set TLS (server verified against the system roots), CAFile for a
// private CA, CertFile and KeyFile for client certificates;
// InsecureSkipVerify is for tests only.
//
// Run Migrate once per deploy (a job, not every replica), then Open from
// each process.
package scyllastore
