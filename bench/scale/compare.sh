#!/usr/bin/env bash
# compare.sh: the same scenarios against two WebSocket transports, each on
# a fresh split deployment (bench/scale/run.sh), side by side in
# bench/results/transports-<date>/comparison.md.
#
#   bench/scale/compare.sh [options] [-- run.sh options]
#
# For each transport in turn (epoll, then goroutine) it runs
#   run.sh --transport T --gateways G --out DIR/T -- connect … -- fanout …
# so each transport gets its own Cassandra node, NATS and gateways, and
# `connect` (memory per idle connection) runs first on fresh gateways;
# then `parley-bench compare DIR epoll goroutine` writes DIR/comparison.md
# with both runs' figures and the ratios goroutine ÷ epoll.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

usage() {
  cat >&2 <<'EOF'
usage: bench/scale/compare.sh [options] [-- run.sh options]

  -g, --gateways N      gateway processes per deployment (2)
      --transports A,B  the two transports; ratios are B ÷ A (epoll,goroutine)
      --connect ARGS    flags of the connect run, one word each
                        ("--clients 2000 --hold 20s --baseline 0")
      --fanout ARGS     flags of the fanout run, one word each
                        ("--rooms 2 --members 1000 --rate 100 --duration 15s --baseline 0")
      --out DIR         (bench/results/transports-<YYYYMMDD-HHMMSS>)
      --bin PATH        the parley binary (bin/parley, built when missing)

Options after -- go to every bench/scale/run.sh, e.g. -- --cassandra-heap 2g.
EOF
  exit 2
}

log() { printf 'compare: %s\n' "$*" >&2; }

GATEWAYS=2 TRANSPORTS=epoll,goroutine BIN="$REPO/bin/parley" OUT=""
CONNECT="--clients 2000 --hold 20s --baseline 0"
FANOUT="--rooms 2 --members 1000 --rate 100 --duration 15s --baseline 0"
while (($#)); do
  case "$1" in
    -g|--gateways) GATEWAYS="$2"; shift 2 ;;
    --transports) TRANSPORTS="$2"; shift 2 ;;
    --connect) CONNECT="$2"; shift 2 ;;
    --fanout) FANOUT="$2"; shift 2 ;;
    --out) OUT="$(realpath -m -- "$2")"; shift 2 ;;
    --bin) BIN="$(realpath -m -- "$2")"; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) log "unknown option $1"; usage ;;
  esac
done
IFS=, read -r -a PAIR <<<"$TRANSPORTS"
((${#PAIR[@]} == 2)) || { log "--transports wants two, comma-separated"; usage; }
OUT="${OUT:-$REPO/bench/results/transports-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"

cd "$REPO"
if [[ ! -x "$BIN" ]]; then
  log "building $BIN"
  mkdir -p "$(dirname "$BIN")"
  go build -o "$BIN" ./cmd/parley
fi
BENCH_BIN="$REPO/bin/parley-bench"
[[ -x "$BENCH_BIN" ]] || go build -o "$BENCH_BIN" ./cmd/parley-bench

read -r -a connect_args <<<"$CONNECT"
read -r -a fanout_args <<<"$FANOUT"
RC=0
for t in "${PAIR[@]}"; do
  log "$t: $GATEWAYS gateway(s), results in $OUT/$t"
  if ! bench/scale/run.sh --bin "$BIN" --gateways "$GATEWAYS" --transport "$t" --out "$OUT/$t" "$@" \
    -- connect "${connect_args[@]}" -- fanout "${fanout_args[@]}"; then
    log "$t: a run failed (see above); comparing what there is"
    RC=1
  fi
  # The summaries link deployment.md from each result folder; keep one
  # next to the transport's folders for the comparison to link.
  first="$(find "$OUT/$t" -mindepth 2 -maxdepth 2 -name deployment.md | sort | head -n 1)"
  [[ -z "$first" ]] || cp "$first" "$OUT/$t/deployment.md"
done
"$BENCH_BIN" compare "$OUT" "${PAIR[0]}" "${PAIR[1]}"
exit "$RC"
