#!/usr/bin/env bash
# run.sh: a split Parley deployment on this machine, and `parley-bench`
# against its gateways.
#
#   bench/scale/run.sh [options] -- SCENARIO [bench flags] [-- SCENARIO [bench flags]]...
#
# Starts, in order, and stops again whatever happens (a failure, Ctrl-C):
#   1. a Cassandra node (deploy/cassandra/cassandra-node) on free ports with
#      its data in the work dir, unless --cassandra-reuse;
#   2. `parley dev --store scylla --scylla-migrate`: embedded NATS, the
#      processor, the archiver, and a gateway on a private port that serves
#      only the bench's setup calls (tokens, rooms);
#   3. --gateways `parley gateway` processes sharing one client port
#      (--reuseport), each with its own --debug-addr (/metrics, pprof).
# Then it runs each scenario in turn against the gateways, sampling only
# them (--server-pid, --metrics-url). Every result folder gets a
# deployment.md with every command line, and its summary.md a link to it.
# Logs stay in the work dir, whose path is printed. bench/README.md,
# "Split deployment and scale runs", has the full-scale commands.
# shellcheck disable=SC2016,SC2317 # backticks are Markdown; cleanup runs from a trap
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CASSANDRA_NODE="$REPO/deploy/cassandra/cassandra-node"
SCRIPT_CMD=("$0" "$@")

usage() {
  cat >&2 <<'EOF'
usage: bench/scale/run.sh [options] -- SCENARIO [bench flags] [-- SCENARIO [bench flags]]...

deployment:
  -g, --gateways N           gateway processes sharing the client port (1)
  -t, --transport T          --ws-transport of every process: epoll or goroutine (epoll)
      --port P               the gateways' client port on 127.0.0.1 (a free one)
      --gateway-flag FLAG    one more flag for every gateway, e.g. --gateway-flag=--ws-pollers=2 (repeatable)
      --gateway-env VAR=VAL  one more environment variable for every gateway only, e.g. GOGC=50 (repeatable)
      --dev-flag FLAG        one more flag for `parley dev` (repeatable)
      --log-level L          of every Parley process (warn)
store:
      --cassandra-reuse      use the Cassandra already answering on --cassandra-port (9042); neither start nor stop it
      --cassandra-port P     its CQL port (a free one)
      --cassandra-storage-port P
      --cassandra-dir DIR    its run dir (WORK/cassandra)
      --cassandra-heap SIZE  its JVM heap, -Xmx (1g)
      --keyspace NAME        (parley_scale_<time>); dropped at the end when the node is reused
files:
      --bin PATH             the parley server binary (bin/parley, built when missing;
                             the load generator is always bin/parley-bench)
      --build                build it even if it exists
      --out DIR              result root, the bench's --out (bench/results)
      --work DIR             data and logs (a new /tmp/parley-scale.XXXXXX)
      --keep                 keep the data (NATS, Cassandra) at the end; logs are always kept

The bench gets --url, --api-url, --server-pid, --metrics-url, --nats-url,
--wait and --out from here; flags given after SCENARIO override them.
EOF
  exit 2
}

log() { printf 'scale: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

GATEWAYS=1 TRANSPORT=epoll PORT="" LOG_LEVEL=warn
C_REUSE=0 C_PORT="" C_SPORT="" C_DIR="" C_HEAP=1g KEYSPACE=""
BIN="$REPO/bin/parley" BUILD=0 OUT="$REPO/bench/results" WORK="" KEEP=0
GW_FLAGS=() GW_ENV=() DEV_FLAGS=()
while (($#)); do
  case "$1" in
    -g|--gateways) GATEWAYS="$2"; shift 2 ;;
    -t|--transport) TRANSPORT="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --gateway-flag) GW_FLAGS+=("$2"); shift 2 ;;
    --gateway-flag=*) GW_FLAGS+=("${1#*=}"); shift ;;
    --gateway-env) GW_ENV+=("$2"); shift 2 ;;
    --gateway-env=*) GW_ENV+=("${1#*=}"); shift ;;
    --dev-flag) DEV_FLAGS+=("$2"); shift 2 ;;
    --dev-flag=*) DEV_FLAGS+=("${1#*=}"); shift ;;
    --log-level) LOG_LEVEL="$2"; shift 2 ;;
    --cassandra-reuse) C_REUSE=1; shift ;;
    --cassandra-port) C_PORT="$2"; shift 2 ;;
    --cassandra-storage-port) C_SPORT="$2"; shift 2 ;;
    --cassandra-dir) C_DIR="$(realpath -m -- "$2")"; shift 2 ;;
    --cassandra-heap) C_HEAP="$2"; shift 2 ;;
    --keyspace) KEYSPACE="$2"; shift 2 ;;
    --bin) BIN="$(realpath -m -- "$2")"; shift 2 ;;
    --build) BUILD=1; shift ;;
    --out) OUT="$(realpath -m -- "$2")"; shift 2 ;;
    --work) WORK="$(realpath -m -- "$2")"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) log "unknown option $1"; usage ;;
  esac
done
(($# > 0)) || { log "name a scenario after --"; usage; }
[[ "$GATEWAYS" =~ ^[1-9][0-9]*$ ]] || die "--gateways must be a positive number"
[[ "$TRANSPORT" == epoll || "$TRANSPORT" == goroutine ]] || die "--transport must be epoll or goroutine"
[[ -z "$KEYSPACE" || "$KEYSPACE" =~ ^[a-z][a-z0-9_]{0,47}$ ]] || die "--keyspace: lower-case letters, digits and _, at most 48"
BENCH_ARGS=("$@") # scenarios separated by --

# Every process started from here may hold as many files as this machine
# lets one process: one socket per connection.
ulimit -n "$(ulimit -Hn)"
cd "$REPO"

if ((BUILD)) || [[ ! -x "$BIN" ]]; then
  log "building $BIN"
  mkdir -p "$(dirname "$BIN")"
  go build -o "$BIN" ./cmd/parley
fi
# The load generator is always this checkout's, whichever server --bin is.
BENCH_BIN="$REPO/bin/parley-bench"
if ((BUILD)) || [[ ! -x "$BENCH_BIN" ]]; then
  log "building $BENCH_BIN"
  go build -o "$BENCH_BIN" ./cmd/parley-bench
fi

if [[ -z "$WORK" ]]; then WORK="$(mktemp -d /tmp/parley-scale.XXXXXX)"; fi
LOGS="$WORK/logs" DATA="$WORK/data"
mkdir -p "$LOGS" "$DATA" "$OUT"
KEYSPACE="${KEYSPACE:-parley_scale_$(date +%s)_$$}"

# --- processes and their cleanup ---------------------------------------------

DEV_PID="" BENCH_PID="" C_STARTED=0
GW_PIDS=() GW_DEBUG=() STARTED=() # STARTED: "name pid" of every process, for deployment.md
C_ENV=()

# stop_pid PID NAME SECONDS: TERM, then KILL after SECONDS.
stop_pid() {
  local pid="$1" name="$2" limit="$3" waited=0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((waited < limit * 5)); do sleep 0.2; waited=$((waited + 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) still running after ${limit}s: KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  trap '' INT TERM # every wait below is bounded
  [[ -n "$BENCH_PID" ]] && stop_pid "$BENCH_PID" bench 30
  local pid
  for pid in "${GW_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${GW_PIDS[@]}"; do stop_pid "$pid" gateway 30; done
  [[ -n "$DEV_PID" ]] && stop_pid "$DEV_PID" "parley dev" 60
  if ((C_STARTED)); then
    cp "$C_DIR/logs/system.log" "$LOGS/cassandra-system.log" 2>/dev/null
    if ((KEEP)); then env "${C_ENV[@]}" "$CASSANDRA_NODE" stop
    else env "${C_ENV[@]}" "$CASSANDRA_NODE" wipe; fi
  elif ((C_REUSE && !KEEP)) && [[ -n "$DEV_PID" ]]; then
    log "dropping keyspace $KEYSPACE"
    PARLEY_CASSANDRA_PORT="$C_PORT" "$CASSANDRA_NODE" cql "DROP KEYSPACE IF EXISTS $KEYSPACE" >/dev/null
  fi
  if ((KEEP)); then log "data kept in $DATA"; else rm -rf -- "$DATA"; fi
  log "logs: $LOGS"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port VAR: a port nothing uses on this machine, below the ephemeral
# range (so that no client connection takes it meanwhile), not handed out
# before by this script.
TAKEN=" "
free_port() {
  local p lo tries=0
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
  while ((tries++ < 1000)); do
    p=$((20000 + RANDOM % (lo - 20000)))
    [[ "$TAKEN" == *" $p "* ]] && continue
    if [[ -z "$(ss -Htan "sport = :$p")" ]]; then
      TAKEN+="$p "
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  die "no free port found"
}

port_busy() { [[ -n "$(ss -Htln "sport = :$1")" ]]; }

# start NAME LOGFILE CMD...: starts CMD in the background, its output in
# LOGFILE; the pid is in $STARTED_PID.
start() {
  local name="$1" logfile="$2"
  shift 2
  "$@" >"$logfile" 2>&1 &
  STARTED_PID=$!
  STARTED+=("$name $STARTED_PID")
  log "$name: pid $STARTED_PID, log $logfile"
}

# wait_ok URL PID NAME SECONDS: until URL answers 200, failing when PID
# exits or after SECONDS.
wait_ok() {
  local url="$1" pid="$2" name="$3" limit="$4" t0=$SECONDS
  until curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$LOGS/$name.log" >&2 || true
      die "$name (pid $pid) exited before $url answered"
    fi
    ((SECONDS - t0 < limit)) || die "$name: $url did not answer within ${limit}s"
    sleep 0.5
  done
}

# shown prints a command line to copy into a shell, the token key left out.
shown() {
  local a out=""
  for a in "$@"; do
    a="${a//$TOKEN_KEY/<token-key>}"
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+="$a "; else out+="'${a//\'/\'\\\'\'}' "; fi
  done
  printf '%s' "${out% }"
}

# --- the store ------------------------------------------------------------------

if ((C_REUSE)); then
  C_PORT="${C_PORT:-9042}"
  port_busy "$C_PORT" || die "--cassandra-reuse: nothing listens on 127.0.0.1:$C_PORT"
  C_DESC="already running on 127.0.0.1:$C_PORT (reused, not started here)"
else
  [[ -n "$C_PORT" ]] || free_port C_PORT
  [[ -n "$C_SPORT" ]] || free_port C_SPORT
  C_DIR="${C_DIR:-$WORK/cassandra}"
  C_ENV=("PARLEY_CASSANDRA_DIR=$C_DIR" "PARLEY_CASSANDRA_PORT=$C_PORT"
    "PARLEY_CASSANDRA_STORAGE_PORT=$C_SPORT" "PARLEY_CASSANDRA_HEAP_MAX=$C_HEAP")
  C_STARTED=1 # from here on the trap stops it, even half-started
  env "${C_ENV[@]}" "$CASSANDRA_NODE" start 2>&1 | tee "$LOGS/cassandra-node.log" >&2
  C_PID="$(cat "$C_DIR/cassandra.pid")"
  STARTED+=("cassandra $C_PID")
  C_DESC="$(grep -o 'Cassandra [0-9.]* ready' "$LOGS/cassandra-node.log" | head -n 1 | sed 's/ ready//;s/^Cassandra //') \
on 127.0.0.1:$C_PORT (pid $C_PID, heap $C_HEAP, run dir $C_DIR), started with \`deploy/cassandra/cassandra-node start\`"
fi

# --- parley dev: NATS, processor, archiver ----------------------------------------

free_port DEV_HTTP
free_port DEV_DEBUG
free_port NATS_PORT
free_port NATS_MON
[[ -n "$PORT" ]] || free_port PORT
port_busy "$PORT" && die "port $PORT is in use"
# One random signing key for every process, through the environment so
# that it stays out of command lines and reports.
TOKEN_KEY="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
export PARLEY_TOKEN_KEY="$TOKEN_KEY"
STORE=(--store scylla --scylla-hosts "127.0.0.1:$C_PORT" --scylla-keyspace "$KEYSPACE" --scylla-replication 1)
# The bench takes every client's token before the storm: a storm that
# outlasts the default 15-minute token lifetime would fail its late logins.
COMMON=(--rate-send -1 --rate-requests -1 --log-level "$LOG_LEVEL"
  --ws-transport "$TRANSPORT" --drain-time 2s --token-ttl 12h)

DEV_CMD=("$BIN" dev "${STORE[@]}" --scylla-migrate --data-dir "$DATA/dev"
  --http-addr "127.0.0.1:$DEV_HTTP" --debug-addr "127.0.0.1:$DEV_DEBUG"
  --nats-host 127.0.0.1 --nats-port "$NATS_PORT" --nats-http-port "$NATS_MON"
  "${COMMON[@]}" ${DEV_FLAGS[@]+"${DEV_FLAGS[@]}"})
start dev "$LOGS/dev.log" "${DEV_CMD[@]}"
DEV_PID=$STARTED_PID
wait_ok "http://127.0.0.1:$DEV_HTTP/readyz" "$DEV_PID" dev 300
log "parley dev ready (NATS nats://127.0.0.1:$NATS_PORT, keyspace $KEYSPACE)"

# --- the gateways -------------------------------------------------------------------

declare -a GW_CMDS
for ((i = 1; i <= GATEWAYS; i++)); do
  free_port dbg
  GW_DEBUG+=("$dbg")
  cmd=(${GW_ENV[@]+env "${GW_ENV[@]}"} "$BIN" gateway "${STORE[@]}" --nats-url "nats://127.0.0.1:$NATS_PORT" --data-dir "$DATA/gateway-$i"
    --http-addr "127.0.0.1:$PORT" --reuseport --debug-addr "127.0.0.1:$dbg" --dev-tokens
    "${COMMON[@]}" ${GW_FLAGS[@]+"${GW_FLAGS[@]}"})
  GW_CMDS[i]="$(shown "${cmd[@]}")"
  start "gateway-$i" "$LOGS/gateway-$i.log" "${cmd[@]}"
  GW_PIDS+=("$STARTED_PID")
done
for ((i = 1; i <= GATEWAYS; i++)); do
  wait_ok "http://127.0.0.1:${GW_DEBUG[i - 1]}/metrics" "${GW_PIDS[i - 1]}" "gateway-$i" 120
done
wait_ok "http://127.0.0.1:$PORT/healthz" "${GW_PIDS[0]}" gateway-1 60
wait_ok "http://127.0.0.1:$PORT/readyz" "${GW_PIDS[0]}" gateway-1 60
PIDS_CSV="$(IFS=,; echo "${GW_PIDS[*]}")"
METRICS_CSV=""
for d in "${GW_DEBUG[@]}"; do METRICS_CSV+="${METRICS_CSV:+,}http://127.0.0.1:$d/metrics"; done
log "$GATEWAYS gateway(s) ready on ws://127.0.0.1:$PORT/ws, transport $TRANSPORT, pids $PIDS_CSV"

# --- deployment.md ----------------------------------------------------------------------


# describe_deployment BENCH_CMD...: deployment.md for a run.
describe_deployment() {
  local commit dirty sum name pid
  commit="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  dirty="$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)"
  sum="$(sha256sum "$BIN" | cut -c1-12)"
  cat <<EOF
# Deployment

Split deployment started by \`bench/scale/run.sh\` on $(hostname), every process on this machine, loopback only.

| | |
| --- | --- |
| Gateways | $GATEWAYS × \`parley gateway --ws-transport $TRANSPORT\` sharing ws://127.0.0.1:$PORT/ws (SO_REUSEPORT), PIDs $PIDS_CSV; each one's /metrics and /debug/pprof on its own --debug-addr: $METRICS_CSV |
| NATS, processor, archiver | one \`parley dev\` (pid $DEV_PID): NATS nats://127.0.0.1:$NATS_PORT, monitoring http://127.0.0.1:$NATS_MON; its own gateway on http://127.0.0.1:$DEV_HTTP serves only the bench's setup calls (tokens, rooms) and is not sampled |
| Store | Cassandra $C_DESC; keyspace \`$KEYSPACE\`, replication 1 |
| Parley | \`$BIN\` (sha256 $sum, built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC')); repository at $commit with $dirty uncommitted paths |
| Open files | $(ulimit -Sn) soft, $(ulimit -Hn) hard, for every process |
| Environment | \`PARLEY_TOKEN_KEY\` (random, shared by every process)$(env | grep -E '^PARLEY_' | grep -vE '^PARLEY_(TOKEN_KEY|CASSANDRA_)' | cut -d= -f1 | sed 's/.*/, `&`/' | tr -d '\n'); flags override these |
| Logs | \`$LOGS\` |
| Started by | \`$(shown "${SCRIPT_CMD[@]}")\` |

## Command lines

EOF
  if ((C_STARTED)); then
    printf '### Cassandra (pid %s)\n\n```sh\n%s%s start\n```\n\n' "$C_PID" "$(shown "${C_ENV[@]}")" "$CASSANDRA_NODE"
  fi
  printf '### parley dev (pid %s)\n\n```sh\n%s\n```\n\n' "$DEV_PID" "$(shown "${DEV_CMD[@]}")"
  for ((i = 1; i <= GATEWAYS; i++)); do
    printf '### gateway %d (pid %s)\n\n```sh\n%s\n```\n\n' "$i" "${GW_PIDS[i - 1]}" "${GW_CMDS[i]}"
  done
  printf '### bench\n\n```sh\n%s\n```\n' "$(shown "$@")"
}

# --- the bench ------------------------------------------------------------------------------

# result_dirs prints the result folders under $OUT.
result_dirs() { find "$OUT" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort; }

RC=0
run_bench() {
  local scenario="$1" before dir pid
  shift
  for pid in "$DEV_PID" "${GW_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || die "process $pid of the deployment has exited; see $LOGS"
  done
  local cmd=("$BENCH_BIN" "$scenario" --url "ws://127.0.0.1:$PORT/ws" --api-url "http://127.0.0.1:$DEV_HTTP"
    --server-pid "$PIDS_CSV" --metrics-url "$METRICS_CSV" --nats-url "nats://127.0.0.1:$NATS_PORT"
    --wait 60s --out "$OUT" "$@")
  log "bench: $(shown "${cmd[@]}")"
  before="$(result_dirs)"
  "${cmd[@]}" > >(tee -a "$LOGS/bench.log") 2>&1 &
  BENCH_PID=$!
  local rc=0
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=""
  if ((rc != 0)); then
    log "bench $scenario failed (exit $rc)"
    ((RC != 0)) || RC=$rc
  fi
  while read -r dir; do
    [[ -n "$dir" ]] || continue
    describe_deployment "${cmd[@]}" >"$OUT/$dir/deployment.md"
    if [[ -f "$OUT/$dir/summary.md" ]]; then
      printf '\n## Deployment\n\n%d × `parley gateway --ws-transport %s` sharing one port (SO_REUSEPORT), with NATS, processor and archiver in one `parley dev` and a Cassandra store: every command line in [deployment.md](deployment.md).\n' \
        "$GATEWAYS" "$TRANSPORT" >>"$OUT/$dir/summary.md"
    fi
    log "results: $OUT/$dir"
  done < <(comm -13 <(echo "$before") <(result_dirs))
}

args=()
for a in "${BENCH_ARGS[@]}" --; do
  if [[ "$a" == -- ]]; then
    ((${#args[@]} == 0)) || run_bench "${args[@]}"
    args=()
  else
    args+=("$a")
  fi
done
exit "$RC"
