// Package chaos holds the short chaos test of `make test`: it starts a
// local cluster with deploy/local-cluster/cluster.sh (three NATS servers,
// a durable Cassandra node, two processors, an archiver, two gateways on
// one port), runs the bench's chaos scenario against it with one kill -9
// of each role, of the NATS server leading CHAT_MSG, and a short store
// outage, and requires nothing lost, stored twice or reordered, every
// message acked, and a complete archive. The scenario itself lives in
// bench/scenario; `parley-bench chaos` runs longer schedules.
package chaos
