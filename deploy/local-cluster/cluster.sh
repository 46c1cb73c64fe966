#!/usr/bin/env bash
# cluster.sh: a multi-process Parley cluster on this machine, loopback only,
# for tests and benchmarks: N NATS servers in one JetStream cluster, a
# Cassandra node, and separate `parley processor`, `parley archiver` and
# `parley gateway` processes against them.
#
#   deploy/local-cluster/cluster.sh start DIR [options]   # see usage below
#   deploy/local-cluster/cluster.sh status DIR
#   deploy/local-cluster/cluster.sh kill DIR NAME         # kill -9, for fault tests
#   deploy/local-cluster/cluster.sh restart DIR NAME      # the same command line again
#   deploy/local-cluster/cluster.sh pause DIR NAME        # SIGSTOP; resume sends SIGCONT
#   deploy/local-cluster/cluster.sh stop DIR [NAME]
#
# Unlike bench/scale/run.sh, which starts a deployment for one bench run and
# takes it down again, this one leaves the cluster running until `stop`, so
# that tests can kill and restart its processes. Everything it knows lives
# in DIR: the command line of each process (cmd/), pids (pids/), logs
# (logs/), data, and cluster.env with the addresses for other scripts to
# source. deploy/local-cluster/README.md has the details.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CASSANDRA_NODE="$REPO/deploy/cassandra/cassandra-node"
CACHE_ROOT="${PARLEY_CACHE:-$HOME/.cache/parley}"

usage() {
  cat >&2 <<'EOF'
usage: deploy/local-cluster/cluster.sh COMMAND DIR [args]

commands:
  start DIR [options]   start a cluster with its state in DIR (refused while DIR has running processes)
  stop DIR [NAME]       stop everything (roles, then Cassandra, then NATS), or only NAME
  status DIR            every process with alive/dead; exit 0 only when all are alive
  kill DIR NAME         kill -9 one process, e.g. processor-1, gateway-2, nats-0, cassandra
  restart DIR NAME      start NAME again with its command line from DIR/cmd/NAME, and wait until it is ready
  pause DIR NAME        SIGSTOP one process: it holds its sockets but answers nothing
  resume DIR NAME       SIGCONT a paused process

start options:
  --nats N                NATS servers in the JetStream cluster (3)
  --processors N          `parley processor` processes (2)
  --archivers N           `parley archiver` processes (1)
  --gateways N            `parley gateway` processes sharing --http-port with SO_REUSEPORT (1)
  --http-port P           the gateways' HTTP/WebSocket port; gateway i's --debug-addr is P+i (28080)
  --nats-base-port P      NATS server i: client P+i, cluster P+1000+i, monitoring P+2000+i (24222)
  --cassandra-port P      Cassandra CQL port (29042)
  --cassandra-storage-port P
                          Cassandra internode port, bound on 127.0.0.1 (29000)
  --cassandra-heap SIZE   its JVM heap, -Xmx (1g)
  --bench                 lift the gateways' per-user rate limits (--rate-send -1 --rate-requests -1)
                          and give tokens 12 h (--token-ttl 12h), as bench runs need
  --log-level L           of every Parley process (info)
  --role-flag FLAG        one more flag for every Parley role process: one every role takes (repeatable)
  --gateway-flag FLAG     one more flag for every gateway (repeatable)
  --processor-flag FLAG   one more flag for every processor (repeatable)
  --archiver-flag FLAG    one more flag for every archiver (repeatable)
  --bin PATH              the parley binary (bin/parley, built when missing)
  --build                 build it even if it exists
EOF
  exit 2
}

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- the state directory -------------------------------------------------------
#
# DIR/cmd/NAME        the process's command line, shell-quoted (one line)
# DIR/pids/NAME.pid   its pid
# DIR/logs/NAME.log   its stdout and stderr, appended to across restarts
# DIR/names           every NAME in start order
# DIR/token.key       the token signing key every role gets as PARLEY_TOKEN_KEY
# DIR/nats-passwords  each role's NATS password (PARLEY_NATS_PASSWORD_<ROLE>=…):
#                     the roles connect as their own NATS users (parley nats-users)
# DIR/cluster.env     addresses and pids, for `source`

# set_dir DIR: the state directory, absolute, since it is what marks our
# processes' command lines.
set_dir() {
  DIR="$(realpath -m -- "$1")"
  CMDS="$DIR/cmd" PIDS="$DIR/pids" LOGS="$DIR/logs"
}

need_cluster() {
  [[ -f "$DIR/names" ]] || die "$DIR holds no cluster (no $DIR/names)"
}

names() { [[ ! -f "$DIR/names" ]] || cat "$DIR/names"; }

# pid_of NAME: the pid recorded for NAME, or nothing.
pid_of() {
  local f="$PIDS/$1.pid"
  [[ -s "$f" ]] && cat "$f"
  return 0
}

# alive NAME: true if NAME's recorded pid runs and is still our process (its
# command line names DIR, so a recycled pid is never taken for it) and is
# not a zombie.
alive() {
  local pid cmdline state
  pid="$(pid_of "$1")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  [[ "$cmdline" == *"$DIR/"* ]] || return 1
  state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ "$state" != Z ]]
}

# save_cmd NAME CMD...: keeps the command line to start NAME with, shell-quoted
# (single quotes, only where needed) so that it reads well, can be copied
# into a shell, and is read back by load_cmd.
save_cmd() {
  local name="$1" a out=""
  shift
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+="$a "; else out+="'${a//\'/\'\\\'\'}' "; fi
  done
  printf '%s\n' "${out% }" >"$CMDS/$name"
}

# load_cmd NAME: NAME's command line into the array CMD.
load_cmd() {
  [[ -f "$CMDS/$1" ]] || die "no process named $1 in $DIR (see $DIR/names)"
  eval "CMD=($(<"$CMDS/$1"))"
}

# kind NAME: nats, cassandra, gateway, processor or archiver.
kind() { printf '%s' "${1%-*}"; }

# --- starting processes ------------------------------------------------------------

# launch NAME: starts NAME's command in the background, in a session of its
# own (so that a Ctrl-C in the calling shell does not reach it, and it
# outlives this script), from DIR, output appended to its log. The process
# writes its own pid before exec, so the pid file names it and not a
# wrapper. Parley roles get the token key in their environment: it never
# appears on a command line.
launch() {
  local name="$1"
  load_cmd "$name"
  rm -f "$PIDS/$name.pid"
  (
    cd "$DIR"
    ulimit -n "$(ulimit -Hn)" # a gateway holds one socket per connection
    case "$(kind "$name")" in
      gateway|processor|archiver)
        PARLEY_TOKEN_KEY="$(<"$DIR/token.key")"; export PARLEY_TOKEN_KEY
        # Each role as its own NATS user, with only its permissions.
        local role pw
        role="$(kind "$name")"
        pw="$(grep "^PARLEY_NATS_PASSWORD_${role^^}=" "$DIR/nats-passwords" | cut -d= -f2-)"
        export PARLEY_NATS_USER="parley-$role" PARLEY_NATS_PASSWORD="$pw" ;;
    esac
    # shellcheck disable=SC2016 # $$ and $0 belong to the inner bash
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDS/$name.pid" "${CMD[@]}"
  ) >>"$LOGS/$name.log" 2>&1 </dev/null &
  local t0=$SECONDS
  until [[ -s "$PIDS/$name.pid" ]]; do
    ((SECONDS - t0 < 10)) || die "$name did not start (see $LOGS/$name.log)"
    sleep 0.05
  done
  log "$name: pid $(pid_of "$name"), log $LOGS/$name.log"
}

# fail NAME MESSAGE: the end of NAME's log, then MESSAGE, then exit.
fail() {
  log "---- last lines of $LOGS/$1.log ----"
  tail -n 30 "$LOGS/$1.log" >&2 || true
  die "$2"
}

# wait_http NAME URL SECONDS: until URL answers 200, failing when NAME dies
# or after SECONDS.
wait_http() {
  local name="$1" url="$2" limit="$3" t0=$SECONDS
  until curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; do
    alive "$name" || fail "$name" "$name exited before $url answered"
    ((SECONDS - t0 < limit)) || fail "$name" "$name: $url did not answer within ${limit}s"
    sleep 0.3
  done
}

# wait_log NAME OFFSET PATTERN SECONDS: until NAME's log, past byte OFFSET
# (what earlier runs wrote), has a line matching PATTERN. Processors and
# archivers have no HTTP listener, so their log says when they run.
wait_log() {
  local name="$1" offset="$2" pattern="$3" limit="$4" t0=$SECONDS
  until tail -c "+$((offset + 1))" "$LOGS/$name.log" | grep -q -- "$pattern"; do
    alive "$name" || fail "$name" "$name exited before it was ready"
    ((SECONDS - t0 < limit)) || fail "$name" "$name not ready within ${limit}s"
    sleep 0.3
  done
}

log_size() { stat -c %s "$LOGS/$1.log" 2>/dev/null || echo 0; }

# port_of NAME: the number after NAME's --flag or in its config: what the
# readiness checks below poll.
nats_monitor_port() { sed -nE 's/^http: 127\.0\.0\.1:([0-9]+)$/\1/p' "$DIR/conf/$1.conf"; }
gateway_debug_port() {
  load_cmd "$1"
  local i
  for ((i = 0; i < ${#CMD[@]}; i++)); do
    [[ "${CMD[i]}" == --debug-addr ]] && { printf '%s' "${CMD[i + 1]##*:}"; return; }
  done
}

# start_one NAME: launches NAME and waits until it is ready; for a restart as
# for the first start.
start_one() {
  local name="$1" offset
  offset="$(log_size "$name")"
  case "$(kind "$name")" in
    nats)
      launch "$name"
      # Liveness only: JetStream is enabled. A restarted server catching up
      # on its streams answers the full /healthz later (checked below).
      wait_http "$name" "http://127.0.0.1:$(nats_monitor_port "$name")/healthz?js-enabled-only=true" 30
      ;;
    cassandra)
      # cassandra-node starts the JVM in a session of its own and waits
      # until it answers CQL.
      load_cmd cassandra
      "${CMD[@]}" >>"$LOGS/cassandra.log" 2>&1 || fail cassandra "cassandra did not start"
      log "cassandra: pid $(pid_of cassandra), log $LOGS/cassandra.log and $DIR/cassandra/logs/system.log"
      ;;
    processor)
      launch "$name"
      wait_log "$name" "$offset" '"processor running"' 60
      ;;
    archiver)
      launch "$name"
      wait_log "$name" "$offset" '"archiving"' 60
      ;;
    gateway)
      launch "$name"
      wait_http "$name" "http://127.0.0.1:$(gateway_debug_port "$name")/metrics" 60
      ;;
    *) die "unknown process kind: $name" ;;
  esac
}

# --- nats-server -----------------------------------------------------------------

# nats_server_bin: nats-server of the version go.mod requires (the one the
# embedded server and the tests use), installed once into the cache.
nats_server_bin() {
  local version dir
  version="$(sed -nE 's#^[[:space:]]*(require[[:space:]]+)?github\.com/nats-io/nats-server/v2[[:space:]]+(v[^[:space:]]+).*#\2#p' "$REPO/go.mod" | head -n 1)"
  [[ -n "$version" ]] || die "no github.com/nats-io/nats-server/v2 in $REPO/go.mod"
  dir="$CACHE_ROOT/nats-server-$version"
  NATS_SERVER="$dir/nats-server"
  NATS_VERSION="$version"
  if [[ ! -x "$NATS_SERVER" ]]; then
    log "installing nats-server $version into $dir"
    mkdir -p "$dir"
    # Outside the repo, so that Parley's go.mod does not take part.
    (cd "$dir" && GOBIN="$dir" go install "github.com/nats-io/nats-server/v2@$version")
  fi
}

# nats_conf I N BASE: the config of NATS server I of N.
nats_conf() {
  local i="$1" n="$2" base="$3" j
  cat <<EOF
# Written by deploy/local-cluster/cluster.sh; rewritten at every start.
server_name: n$i
listen: 127.0.0.1:$((base + i))
http: 127.0.0.1:$((base + 2000 + i))
jetstream {
  store_dir: "$DIR/nats-$i"
}
# Parley's roles each as its own user (parley nats-users); connections
# without credentials (the nats CLI, the bench) get the unrestricted admin.
include users.conf
no_auth_user: admin
EOF
  # One server alone runs JetStream standalone: a cluster block without
  # routes would wait for peers that never come.
  ((n > 1)) || return 0
  printf 'cluster {\n  name: parley-local\n  listen: 127.0.0.1:%d\n  routes: [\n' $((base + 1000 + i))
  for ((j = 0; j < n; j++)); do
    ((j == i)) || printf '    nats-route://127.0.0.1:%d\n' $((base + 1000 + j))
  done
  printf '  ]\n}\n'
}

# wait_meta_leader N BASE: until every server knows the JetStream meta
# leader, so that the roles' first JetStream calls find a cluster that
# answers (they would retry for 30 s anyway).
wait_meta_leader() {
  local n="$1" base="$2" i t0=$SECONDS leader
  ((n > 1)) || return 0
  for ((i = 0; i < n; i++)); do
    until leader="$(curl -fsS -m 2 "http://127.0.0.1:$((base + 2000 + i))/jsz" 2>/dev/null |
      grep -o '"leader": *"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')" && [[ -n "$leader" ]]; do
      alive "nats-$i" || fail "nats-$i" "nats-$i exited while electing a JetStream meta leader"
      ((SECONDS - t0 < 60)) || fail "nats-$i" "no JetStream meta leader after 60s"
      sleep 0.3
    done
  done
  log "JetStream meta leader: $leader"
}

# --- cluster.env -------------------------------------------------------------------

# csv_pids KIND: the pids of KIND's processes, comma-separated.
csv_pids() {
  local name out=""
  while read -r name; do
    [[ "$(kind "$name")" == "$1" ]] && out+="${out:+,}$(pid_of "$name")"
  done < <(names)
  printf '%s' "$out"
}

# write_env: DIR/cluster.env, rewritten after a restart, since pids change.
write_env() {
  # shellcheck disable=SC1091
  source "$DIR/ports"
  local i nats="" mon="" debug="" metrics=""
  for ((i = 0; i < NATS_N; i++)); do
    nats+="${nats:+,}nats://127.0.0.1:$((NATS_BASE + i))"
    mon+="${mon:+,}http://127.0.0.1:$((NATS_BASE + 2000 + i))"
  done
  for ((i = 1; i <= GATEWAYS_N; i++)); do
    debug+="${debug:+,}http://127.0.0.1:$((HTTP_PORT + i))"
    metrics+="${metrics:+,}http://127.0.0.1:$((HTTP_PORT + i))/metrics"
  done
  local gw_pids
  gw_pids="$(csv_pids gateway)"
  cat >"$DIR/cluster.env.tmp" <<EOF
# Written by deploy/local-cluster/cluster.sh; rewritten by start and restart.
# Plain shell assignments, not exported: \`source\` this file.
CLUSTER_DIR=$DIR
CLUSTER_SCRIPT=$REPO/deploy/local-cluster/cluster.sh
CLUSTER_BIN=$PARLEY_BIN
CLUSTER_HTTP=http://127.0.0.1:$HTTP_PORT
CLUSTER_WS=ws://127.0.0.1:$HTTP_PORT/ws
CLUSTER_NATS=$nats
CLUSTER_NATS_MONITOR=$mon
CLUSTER_GATEWAY_DEBUG=$debug
CLUSTER_GATEWAY_METRICS=$metrics
CLUSTER_SCYLLA_HOSTS=127.0.0.1:$CASSANDRA_PORT
CLUSTER_REPLICAS=$REPLICAS
CLUSTER_GATEWAY_PIDS=$gw_pids
CLUSTER_PROCESSOR_PIDS=$(csv_pids processor)
CLUSTER_ARCHIVER_PIDS=$(csv_pids archiver)
CLUSTER_NATS_PIDS=$(csv_pids nats)
CLUSTER_CASSANDRA_PID=$(pid_of cassandra)
# Flags for \`parley-bench SCENARIO\`: the gateways' port, the API on it (the
# gateways serve dev tokens), every NATS server, and the gateways sampled.
CLUSTER_BENCH_FLAGS="--url ws://127.0.0.1:$HTTP_PORT/ws --api-url http://127.0.0.1:$HTTP_PORT --nats-url $nats --server-pid $gw_pids --metrics-url $metrics"
EOF
  mv "$DIR/cluster.env.tmp" "$DIR/cluster.env"
}

# --- stopping ------------------------------------------------------------------------

# signal_stop NAME: asks NAME to stop. cassandra-node drains Cassandra
# itself, and is asked even when no pid is known: it finds its node by the
# run dir, e.g. one an interrupted start left behind.
signal_stop() {
  local name="$1"
  if [[ "$name" == cassandra ]]; then
    load_cmd cassandra
    CMD[${#CMD[@]} - 1]=stop # the same environment, `stop` instead of `start`
    "${CMD[@]}" >>"$LOGS/cassandra.log" 2>&1 || log "cassandra-node stop failed (see $LOGS/cassandra.log)"
  elif alive "$name"; then
    kill -TERM "$(pid_of "$name")" 2>/dev/null || true
    kill -CONT "$(pid_of "$name")" 2>/dev/null || true # a paused process handles TERM once resumed
  fi
}

# wait_gone NAME SECONDS: waits for NAME to exit, then KILLs it.
wait_gone() {
  local name="$1" limit="$2" t0=$SECONDS
  while alive "$name"; do
    if ((SECONDS - t0 >= limit)); then
      log "$name still running after ${limit}s: KILL"
      kill -KILL "$(pid_of "$name")" 2>/dev/null || true
      sleep 0.5
      return 0
    fi
    sleep 0.2
  done
}

# stop_kind KIND SECONDS: stops all of KIND's processes at once.
stop_kind() {
  local name list=()
  while read -r name; do
    [[ "$(kind "$name")" == "$1" ]] && { [[ "$name" == cassandra ]] || alive "$name"; } && list+=("$name")
  done < <(names)
  ((${#list[@]})) || return 0
  log "stopping ${list[*]}"
  for name in "${list[@]}"; do signal_stop "$name"; done
  for name in "${list[@]}"; do wait_gone "$name" "$2"; done
}

# stop_all: gateways first (clients stop sending), then processors (they
# hand their partitions back), archivers (they finish their batch), the
# store, and NATS last, which all of them need to stop cleanly.
stop_all() {
  stop_kind gateway 30
  stop_kind processor 30
  stop_kind archiver 30
  stop_kind cassandra 90
  stop_kind nats 30
}

# --- commands ----------------------------------------------------------------------------

cmd_start() {
  (($# >= 1)) || usage
  set_dir "$1"
  shift
  local NATS_N=3 PROCESSORS_N=2 ARCHIVERS_N=1 GATEWAYS_N=1 HTTP_PORT=28080 NATS_BASE=24222
  local CASSANDRA_PORT=29042 CASSANDRA_SPORT=29000 CASSANDRA_HEAP=1g BENCH=0 LOG_LEVEL=info
  local BUILD=0 ROLE_FLAGS=() GW_FLAGS=() PROC_FLAGS=() ARCH_FLAGS=()
  PARLEY_BIN="$REPO/bin/parley"
  while (($#)); do
    case "$1" in
      --nats) NATS_N="$2"; shift 2 ;;
      --processors) PROCESSORS_N="$2"; shift 2 ;;
      --archivers) ARCHIVERS_N="$2"; shift 2 ;;
      --gateways) GATEWAYS_N="$2"; shift 2 ;;
      --http-port) HTTP_PORT="$2"; shift 2 ;;
      --nats-base-port) NATS_BASE="$2"; shift 2 ;;
      --cassandra-port) CASSANDRA_PORT="$2"; shift 2 ;;
      --cassandra-storage-port) CASSANDRA_SPORT="$2"; shift 2 ;;
      --cassandra-heap) CASSANDRA_HEAP="$2"; shift 2 ;;
      --bench) BENCH=1; shift ;;
      --log-level) LOG_LEVEL="$2"; shift 2 ;;
      --role-flag) ROLE_FLAGS+=("$2"); shift 2 ;;
      --role-flag=*) ROLE_FLAGS+=("${1#*=}"); shift ;;
      --gateway-flag) GW_FLAGS+=("$2"); shift 2 ;;
      --gateway-flag=*) GW_FLAGS+=("${1#*=}"); shift ;;
      --processor-flag) PROC_FLAGS+=("$2"); shift 2 ;;
      --processor-flag=*) PROC_FLAGS+=("${1#*=}"); shift ;;
      --archiver-flag) ARCH_FLAGS+=("$2"); shift 2 ;;
      --archiver-flag=*) ARCH_FLAGS+=("${1#*=}"); shift ;;
      --bin) PARLEY_BIN="$(realpath -m -- "$2")"; shift 2 ;;
      --build) BUILD=1; shift ;;
      -h|--help) usage ;;
      *) log "unknown option $1"; usage ;;
    esac
  done
  local v
  for v in NATS_N PROCESSORS_N ARCHIVERS_N GATEWAYS_N; do
    [[ "${!v}" =~ ^[1-9][0-9]?$ ]] || die "process counts must be 1 to 99"
  done
  for v in HTTP_PORT NATS_BASE CASSANDRA_PORT CASSANDRA_SPORT; do
    if ! [[ "${!v}" =~ ^[0-9]+$ ]] || ((${!v} < 1024 || ${!v} + 2000 + NATS_N >= 65536)); then
      die "ports must be numbers from 1024 (and the NATS base port at most 63000)"
    fi
  done

  # Refuse to start twice on one DIR: the pids there would be lost.
  if [[ -d "$PIDS" ]]; then
    local f running=()
    for f in "$PIDS"/*.pid; do
      [[ -e "$f" ]] || continue
      f="${f##*/}"
      alive "${f%.pid}" && running+=("${f%.pid}")
    done
    ((${#running[@]} == 0)) || die "$DIR has running processes (${running[*]}): \`$0 stop $DIR\` first"
  fi

  # Every port this cluster takes, checked before anything starts.
  local ports=() i p
  for ((i = 0; i < NATS_N; i++)); do ports+=($((NATS_BASE + i)) $((NATS_BASE + 1000 + i)) $((NATS_BASE + 2000 + i))); done
  for ((i = 0; i <= GATEWAYS_N; i++)); do ports+=($((HTTP_PORT + i))); done
  ports+=("$CASSANDRA_PORT" "$CASSANDRA_SPORT")
  for p in "${ports[@]}"; do
    [[ -z "$(ss -Htln "sport = :$p")" ]] || die "port $p is in use (see --http-port, --nats-base-port, --cassandra-port)"
  done
  [[ "$(printf '%s\n' "${ports[@]}" | sort | uniq -d)" == "" ]] || die "the port ranges overlap: $(printf '%s\n' "${ports[@]}" | sort | uniq -d | xargs)"

  cd "$REPO"
  if ((BUILD)) || [[ ! -x "$PARLEY_BIN" ]]; then
    log "building $PARLEY_BIN"
    mkdir -p "$(dirname "$PARLEY_BIN")"
    go build -o "$PARLEY_BIN" ./cmd/parley
  fi
  nats_server_bin

  mkdir -p "$DIR" "$CMDS" "$PIDS" "$LOGS" "$DIR/conf" "$DIR/data"
  rm -f "$CMDS"/* "$PIDS"/* "$DIR/names" "$DIR/cluster.env"
  # A key from an earlier start is kept, so that its tokens stay valid.
  if [[ ! -s "$DIR/token.key" ]]; then
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$DIR/token.key")
  fi
  # JetStream replicas: 3 as in production, fewer when there are fewer servers.
  REPLICAS=$((NATS_N < 3 ? NATS_N : 3))
  # What write_env needs again after a restart.
  for v in NATS_N NATS_BASE HTTP_PORT GATEWAYS_N CASSANDRA_PORT REPLICAS PARLEY_BIN; do
    printf '%s=%q\n' "$v" "${!v}"
  done >"$DIR/ports"

  # From here on, a failure stops whatever this start has started.
  # shellcheck disable=SC2034 # read by the trap
  STARTING=1
  trap 'if ((STARTING)); then log "start failed: stopping what was started"; stop_all; fi' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # 1. NATS, with a user per role.
  if [[ ! -s "$DIR/nats-passwords" ]]; then
    (umask 077 && for r in GATEWAY PROCESSOR ARCHIVER ADMIN; do
      printf 'PARLEY_NATS_PASSWORD_%s=%s\n' "$r" "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
    done >"$DIR/nats-passwords")
  fi
  (set -a && . "$DIR/nats-passwords" && "$PARLEY_BIN" nats-users) >"$DIR/conf/users.conf" ||
    fail nats "parley nats-users failed"
  # no_auth_user cannot map to a user whose password is a bcrypt hash: the
  # local cluster's admin keeps its password in clear (loopback only).
  local admin_pw
  admin_pw="$(grep '^PARLEY_NATS_PASSWORD_ADMIN=' "$DIR/nats-passwords" | cut -d= -f2-)"
  sed -i "s|{user: \"admin\", password: \"[^\"]*\"}|{user: \"admin\", password: \"$admin_pw\"}|" "$DIR/conf/users.conf"
  local name urls=""
  for ((i = 0; i < NATS_N; i++)); do
    name="nats-$i"
    nats_conf "$i" "$NATS_N" "$NATS_BASE" >"$DIR/conf/$name.conf"
    save_cmd "$name" "$NATS_SERVER" -c "$DIR/conf/$name.conf"
    echo "$name" >>"$DIR/names"
    urls+="${urls:+,}nats://127.0.0.1:$((NATS_BASE + i))"
  done
  for ((i = 0; i < NATS_N; i++)); do launch "nats-$i"; done
  for ((i = 0; i < NATS_N; i++)); do
    wait_http "nats-$i" "http://127.0.0.1:$((NATS_BASE + 2000 + i))/healthz?js-enabled-only=true" 30
  done
  wait_meta_leader "$NATS_N" "$NATS_BASE"

  # 2. Cassandra, and the schema; durable, since fault tests kill it.
  save_cmd cassandra env "PARLEY_CASSANDRA_DIR=$DIR/cassandra" "PARLEY_CASSANDRA_PORT=$CASSANDRA_PORT" \
    "PARLEY_CASSANDRA_STORAGE_PORT=$CASSANDRA_SPORT" "PARLEY_CASSANDRA_HEAP_MAX=$CASSANDRA_HEAP" \
    PARLEY_CASSANDRA_DURABLE=1 "$CASSANDRA_NODE" start
  echo cassandra >>"$DIR/names"
  # cassandra-node keeps the pid itself, from the moment it launches the JVM.
  ln -sfn ../cassandra/cassandra.pid "$PIDS/cassandra.pid"
  start_one cassandra
  local scylla=(--store scylla --scylla-hosts "127.0.0.1:$CASSANDRA_PORT" --scylla-consistency ONE)
  log "migrating the schema"
  "$PARLEY_BIN" migrate --scylla-hosts "127.0.0.1:$CASSANDRA_PORT" --scylla-replication 1 \
    >>"$LOGS/migrate.log" 2>&1 || fail migrate "parley migrate failed"

  # 3. The roles. Each starts after the one before is ready: the first
  # creates the streams and buckets, and they come up in a known order.
  local common=("${scylla[@]}" --replicas "$REPLICAS" --nats-url "$urls"
    --log-level "$LOG_LEVEL" --log-format json ${ROLE_FLAGS[@]+"${ROLE_FLAGS[@]}"})
  local role n
  for role in processor archiver gateway; do
    case "$role" in
      processor) n=$PROCESSORS_N ;; archiver) n=$ARCHIVERS_N ;; gateway) n=$GATEWAYS_N ;;
    esac
    for ((i = 1; i <= n; i++)); do
      name="$role-$i"
      local cmd=("$PARLEY_BIN" "$role" "${common[@]}" --data-dir "$DIR/data/$name")
      if [[ "$role" == gateway ]]; then
        cmd+=(--http-addr "127.0.0.1:$HTTP_PORT" --reuseport --debug-addr "127.0.0.1:$((HTTP_PORT + i))"
          --dev-tokens --drain-time 2s)
        ((BENCH)) && cmd+=(--rate-send -1 --rate-requests -1 --token-ttl 12h)
        cmd+=(${GW_FLAGS[@]+"${GW_FLAGS[@]}"})
      fi
      [[ "$role" == processor ]] && cmd+=(${PROC_FLAGS[@]+"${PROC_FLAGS[@]}"})
      [[ "$role" == archiver ]] && cmd+=(${ARCH_FLAGS[@]+"${ARCH_FLAGS[@]}"})
      save_cmd "$name" "${cmd[@]}"
      echo "$name" >>"$DIR/names"
      start_one "$name"
    done
  done
  wait_http gateway-1 "http://127.0.0.1:$HTTP_PORT/readyz" 60

  # shellcheck disable=SC2034 # read by the trap
  STARTING=0
  write_env
  # shellcheck disable=SC1091
  source "$DIR/cluster.env"
  cat >&2 <<EOF
cluster: ready ($NATS_N NATS, Cassandra, $PROCESSORS_N processor(s), $ARCHIVERS_N archiver(s), $GATEWAYS_N gateway(s))
  HTTP       $CLUSTER_HTTP
  WebSocket  $CLUSTER_WS
  NATS       $CLUSTER_NATS (nats-server $NATS_VERSION)
  CQL        $CLUSTER_SCYLLA_HOSTS
  logs       $LOGS
  source $DIR/cluster.env for these; stop with: $0 stop $DIR
EOF
}

cmd_stop() {
  (($# >= 1 && $# <= 2)) || usage
  set_dir "$1"
  need_cluster
  if (($# == 2)); then
    load_cmd "$2" # refuses unknown names
    alive "$2" || { log "$2 is not running"; return 0; }
    log "stopping $2"
    signal_stop "$2"
    wait_gone "$2" 90
    return 0
  fi
  stop_all
  log "stopped; data and logs stay in $DIR"
}

cmd_status() {
  (($# == 1)) || usage
  set_dir "$1"
  need_cluster
  local name pid state rc=0
  while read -r name; do
    pid="$(pid_of "$name")"
    if alive "$name"; then state=alive; else state=dead; rc=3; fi
    printf '%-14s %-8s %-6s %s\n' "$name" "${pid:--}" "$state" "$LOGS/$name.log"
  done < <(names)
  return "$rc"
}

cmd_kill() {
  (($# == 2)) || usage
  set_dir "$1"
  need_cluster
  load_cmd "$2"
  alive "$2" || die "$2 is not running"
  kill -KILL "$(pid_of "$2")"
  log "$2 (pid $(pid_of "$2")) killed"
}

# cmd_signal SIGNAL DIR NAME: pause (STOP) or resume (CONT) one process.
cmd_signal() {
  (($# == 3)) || usage
  local sig="$1"
  set_dir "$2"
  need_cluster
  load_cmd "$3"
  alive "$3" || die "$3 is not running"
  kill "-$sig" "$(pid_of "$3")"
  log "$3 (pid $(pid_of "$3")) sent SIG$sig"
}

cmd_restart() {
  (($# == 2)) || usage
  set_dir "$1"
  need_cluster
  local name="$2"
  load_cmd "$name"
  alive "$name" && die "$name is running (pid $(pid_of "$name")): kill or stop it first"
  start_one "$name"
  if [[ "$(kind "$name")" == nats ]]; then
    # Back in the cluster once its streams have caught up: the full /healthz.
    local port t0=$SECONDS
    port="$(nats_monitor_port "$name")"
    until curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
      if ((SECONDS - t0 >= 60)); then log "$name: /healthz not yet ok after 60s (still catching up?)"; break; fi
      sleep 0.5
    done
  fi
  write_env
  log "$name restarted"
}

(($# >= 1)) || usage
command="$1"
shift
case "$command" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  kill) cmd_kill "$@" ;;
  restart) cmd_restart "$@" ;;
  pause) cmd_signal STOP "$@" ;;
  resume) cmd_signal CONT "$@" ;;
  -h|--help|help) usage ;;
  *) log "unknown command $command"; usage ;;
esac
