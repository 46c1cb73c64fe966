#!/usr/bin/env bash
# Reproduces this folder: a local cluster (deploy/local-cluster: 3 NATS
# servers with CHAT_MSG at R3, a durable Cassandra node, 2 processors, 2
# archivers, 2 gateways on one port) and `parley-bench chaos` against it
# with every fault: kill -9 and restart of each role, of the NATS server
# leading CHAT_MSG and of a follower, 20 s SIGSTOP pauses of the leader and
# of a processor, and a 150 s store outage; 200 msg/s throughout, about 14
# minutes and 160,000 messages. The report lands in NAME/chaos-<date>/
# here, the bench's output in NAME/bench.log, the warnings and errors of
# every process in NAME/cluster-warnings.txt.
#
#   make build && bench/results/chaos-20261202/run.sh NAME [more parley-bench flags]
#
# long:  run.sh long
# lag:   run.sh lag --faults pause:nats-leader,kill:nats-leader,kill:processor-1,kill:cassandra --before 15s --after 45s
set -euo pipefail
R=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$R/../../.." && pwd)
OUT="$R/${1:?name the run}"
shift
mkdir -p "$OUT"
DIR=$(mktemp -d /tmp/parley-chaos.XXXXXX)
cluster() { "$REPO/deploy/local-cluster/cluster.sh" "$@"; }
trap 'cluster stop "$DIR" || true; echo "cluster logs: $DIR/logs" >&2' EXIT

cluster start "$DIR" --bench --gateways 2 --archivers 2 --bin "$REPO/bin/parley"
# shellcheck disable=SC1091
source "$DIR/cluster.env"
rc=0
# shellcheck disable=SC2086 # the flags are words
"$REPO/bin/parley-bench" chaos --cluster "$DIR" $CLUSTER_BENCH_FLAGS --baseline 0 --rate 200 \
  --progress=false --out "$OUT" "$@" 2>&1 | tee "$OUT/bench.log" || rc=$?

# What the processes complained about, per log: counts and the first lines.
for f in "$DIR"/logs/*.log; do
  n=$(grep -c '"level":"\(warn\|error\)"' "$f" || true)
  printf '== %s: %s warnings and errors\n' "$(basename "$f")" "$n"
  grep '"level":"\(warn\|error\)"' "$f" | head -n 20 || true
done >"$OUT/cluster-warnings.txt"
exit "$rc"
