#!/usr/bin/env bash
# Reproduces this folder: the message path before (OLD, a `parley` binary
# built from 7d28e29) and after (NEW, bin/parley), one after the other on
# a quiet machine, each against a fresh `parley dev`, each bench run with
# its own raw JetStream baseline; then `parley bench compare` per case.
#
#   git worktree add /tmp/oldsrc 7d28e29 && (cd /tmp/oldsrc && go build -o /tmp/parley-old ./cmd/parley)
#   make build && bench/results/message-path-20261202/run.sh /tmp/parley-old bin/parley
set -u
OLD=$(realpath "$1") NEW=$(realpath "$2")
R=$(cd "$(dirname "$0")" && pwd)

# serve BIN OUT -- BENCH ARGS: a fresh `parley dev` on a temporary data dir,
# its pprof on 127.0.0.1:16060, the bench (always NEW's harness) against it.
serve() {
  local bin=$1 out=$2; shift 3
  local data; data=$(mktemp -d); mkdir -p "$out"
  "$bin" dev --data-dir "$data" --log-level warn --http-addr 127.0.0.1:18080 --rate-send -1 --rate-requests -1 \
    --nats-port 14222 --nats-http-port 18222 --debug-addr 127.0.0.1:16060 > "$out/server.log" 2>&1 &
  local pid=$!
  "$NEW" bench "$@" --url ws://127.0.0.1:18080/ws --nats-url nats://127.0.0.1:14222 --server-pid $pid \
    --wait 60s --out "$out" --progress=false
  kill $pid; wait $pid; rm -rf "$data"
}

# one CASE LABEL BIN [profile] -- BENCH ARGS; "profile" takes a 10 s CPU
# profile of the server 8 s into the run, as CASE/LABEL.cpu.pprof.
one() {
  local c=$1 label=$2 bin=$3; shift 3
  if [ "$1" = profile ]; then
    shift
    (sleep 8; curl -s -o "$R/$c/$label.cpu.pprof" "http://127.0.0.1:16060/debug/pprof/profile?seconds=10") &
  fi
  mkdir -p "$R/$c"
  serve "$bin" "$R/$c/$label" "$@" > "$R/$c/$label.log" 2>&1
  wait
}

for side in old:$OLD new:$NEW; do
  label=${side%%:*} bin=${side#*:}
  ramp=1000,2000,3000,4000,5000,6000
  [ $label = old ] && ramp=500,1000,1500,2000
  one ramp-500x2 $label "$bin" -- groups --rooms 500 --members 2 --ramp $ramp --duration 15s --slo 50ms
  one 1000-500x2 $label "$bin" profile -- groups --rooms 500 --members 2 --rate 1000 --duration 30s
  one 1000-100x10 $label "$bin" profile -- groups --rooms 100 --members 10 --rate 1000 --duration 30s
done
for c in ramp-500x2 1000-500x2 1000-100x10; do "$NEW" bench compare "$R/$c" old new; done
