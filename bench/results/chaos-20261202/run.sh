#!/usr/bin/env bash
# Reproduces this folder: a local cluster (deploy/local-cluster: 3 NATS
# servers with CHAT_MSG at R3, a durable Cassandra node, 2 processors, 2
# archivers, 2 gateways on one port) and `parley-bench chaos` against it
# with every fault: kill -9 and restart of each role, of the NATS server
# leading CHAT_MSG and of a follower, 20 s SIGSTOP pauses of the leader and
# of a processor, and a 150 s store outage; 200 msg/s throughout, about 14
# minutes and 160,000 messages. The report lands in chaos-<date>/ here,
# the bench's output in bench.log, the warnings and errors of every
# process in cluster-warnings.txt.
#
#   make build && bench/results/chaos-20261202/run.sh [more parley-bench flags]
set -euo pipefail
R=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$R/../../.." && pwd)
DIR=$(mktemp -d /tmp/parley-chaos.XXXXXX)
cluster() { "$REPO/deploy/local-cluster/cluster.sh" "$@"; }
trap 'cluster stop "$DIR" || true; echo "cluster logs: $DIR/logs" >&2' EXIT

cluster start "$DIR" --bench --gateways 2 --archivers 2 --bin "$REPO/bin/parley"
# shellcheck disable=SC1091
source "$DIR/cluster.env"
rc=0
# shellcheck disable=SC2086 # the flags are words
"$REPO/bin/parley-bench" chaos --cluster "$DIR" $CLUSTER_BENCH_FLAGS --baseline 0 --rate 200 \
  --progress=false --out "$R" "$@" 2>&1 | tee "$R/bench.log" || rc=$?

# What the processes complained about, per log: counts and the first lines.
for f in "$DIR"/logs/*.log; do
  n=$(grep -c '"level":"\(warn\|error\)"' "$f" || true)
  printf '== %s: %s warnings and errors\n' "$(basename "$f")" "$n"
  grep '"level":"\(warn\|error\)"' "$f" | head -n 20 || true
done >"$R/cluster-warnings.txt"
exit "$rc"
