#!/usr/bin/env bash
# The message path on a 3-node NATS cluster (R3) with 2 processors, Cassandra,
# an archiver and a gateway, all on this machine (deploy/local-cluster).
set -u
cd /work/main
R=bench/results/message-path-20261202/cluster-r3
mkdir -p $R
deploy/local-cluster/cluster.sh start /tmp/pc --bench > $R/cluster-start.log 2>&1 || { echo start failed; exit 1; }
source /tmp/pc/cluster.env
bin/parley bench groups --rooms 500 --members 2 --ramp 500,1000,1500,2000,3000 --duration 15s --slo 50ms $CLUSTER_BENCH_FLAGS --out $R --progress=false > $R/ramp.log 2>&1
bin/parley bench groups --rooms 100 --members 10 --rate 1000 --duration 600s $CLUSTER_BENCH_FLAGS --baseline 0 --out $R --progress=false > $R/10min.log 2>&1
for f in /tmp/pc/logs/processor-*.log; do
  echo "$(basename $f): fenced $(grep -c 'fenced, reloading' $f), partitions taken $(grep -c 'partition taken' $f), released $(grep -c 'partition released' $f), lease lost $(grep -c 'lease lost\|not renewed in time' $f)"
done > $R/processors.txt
deploy/local-cluster/cluster.sh stop /tmp/pc > $R/cluster-stop.log 2>&1
