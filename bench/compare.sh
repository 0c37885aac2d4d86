#!/usr/bin/env bash
# bench/compare.sh [--quick]: cinchd, memcached and Redis side by side, in one command.
#
# Installs what is missing (Debian packages: memcached, redis-server, python3-matplotlib),
# builds cinchd and cinch_load in release mode, then starts each server in turn on a free
# loopback port with the same memory limit and one worker thread, and measures:
#   a) throughput and latency: get/set 90/10 and 50/50, uniform and Zipf(0.99) keys, small
#      (32-128 B) and mixed (<= 4 KiB) values, pipelined (depth 16) and not;
#   b) memory: overhead per item; RAMCloud W1-W8 at a live set of 80 % of the limit (live set
#      kept, every live key read back; peak RSS / limit); size shifts, where each phase writes
#      several times the limit (bytes of the current phase retained; peak RSS / limit);
#      RSS after flush_all;
#   c) latency while evicting: open-loop, 90 % sets, against a full cache;
#   d) RSS over time against the limit (plotted).
# Servers alternate within every scenario (the starting server rotates) so drift cancels.
# With 2+ cores the server is pinned to core 0 and the load generator to core 1.
#
# Output: bench/results/compare.md (compare-quick.md with --quick) and PNG plots beside it;
# raw JSON lines and RSS samples in build/compare[-quick]/. Full run < 20 min on 2 cores,
# --quick < 3 min. Exits 1 if any value read back was wrong or a run failed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

QUICK=0
case "${1:-}" in
  --quick) QUICK=1 ;;
  "") ;;
  -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: bench/compare.sh [--quick]" >&2; exit 2 ;;
esac

# --- packages: the build's own (scripts/setup.sh), then the benchmark's, only when missing.
scripts/setup.sh
BENCH_PACKAGES=(memcached redis-server python3-matplotlib)
missing=()
for p in "${BENCH_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "compare: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's matplotlib is for Debian's python, whatever python3 is first on PATH.
PYTHON=/usr/bin/python3

# --- build
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target cinchd cinch_load
CINCHD="$ROOT/build/release/tools/cinchd"
LOAD="$ROOT/build/release/tools/load/cinch_load"

# --- parameters
if ((QUICK)); then
  NAME=compare-quick
  TP_KEYS=50000 TP_WARMUP=0.5 TP_SECONDS=1.5
  TP_SCENARIOS=("90:10 uniform small 1" "90:10 zipf mixed 16" "50:50 uniform small 16"
                "50:50 zipf mixed 1")
  FILL_KEYS=250000
  MEM_LIMIT=64 WRITE_FACTOR=1.5 WORKLOADS=(W3 W5 W8)
  SHIFT_LIMIT=64 SHIFT_FACTOR=2 SHIFTS=(S1)
  EV_LIMIT=64 EV_KEYS=1000000 EV_RATES=(50000) EV_SECONDS=2
else
  NAME=compare
  TP_KEYS=100000 TP_WARMUP=1 TP_SECONDS=3
  TP_SCENARIOS=()
  for ratio in 90:10 50:50; do
    for keys in uniform zipf; do
      for values in small mixed; do
        for depth in 1 16; do TP_SCENARIOS+=("$ratio $keys $values $depth"); done
      done
    done
  done
  FILL_KEYS=1000000
  # 256 MiB with 3x writes takes about a minute per workload and server here: too long.
  MEM_LIMIT=128 WRITE_FACTOR=2 WORKLOADS=(W1 W2 W3 W4 W5 W6 W7 W8)
  SHIFT_LIMIT=64 SHIFT_FACTOR=3 SHIFTS=(S1 S2 S3)
  EV_LIMIT=64 EV_KEYS=1500000 EV_RATES=(25000 50000) EV_SECONDS=8
fi
TP_LIMIT=1024     # throughput runs: large enough that nothing is evicted
CONNECTIONS=16
SERVERS=(cinchd memcached redis)

RAW="$ROOT/build/$NAME"
rm -rf "$RAW"
mkdir -p "$RAW" "$ROOT/bench/results"
RESULTS="$RAW/results.jsonl"
: >"$RESULTS"

# COMPARE_PIN=0 turns pinning off (e.g. when other work shares the machine's cores).
SERVER_CPU=() LOAD_CPU=()
if [ "${COMPARE_PIN:-1}" != 0 ] && (($(nproc) >= 2)) && command -v taskset >/dev/null; then
  SERVER_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1)
fi

# --- machine description (read again by the report)
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc=$(nproc)"
  echo "memory=$(free -h | awk '/^Mem:/ {print $2}')"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "debian=$(cat /etc/debian_version)"
  echo "kernel=$(uname -r)"
  echo "gxx=$(g++ --version | head -1)"
  echo "memcached=$(memcached -V 2>&1 | head -1)"
  echo "redis=$(redis-server --version | head -1)"
  echo "cinchd=$("$CINCHD" -V 2>&1 | head -1)"
  echo "git=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "pinned=$((${#SERVER_CPU[@]} > 0 ? 1 : 0))"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "quick=$QUICK"
  echo "mem_limit=$MEM_LIMIT"
  echo "write_factor=$WRITE_FACTOR"
  echo "shift_limit=$SHIFT_LIMIT"
  echo "shift_factor=$SHIFT_FACTOR"
  echo "fill_keys=$FILL_KEYS"
  echo "tp_keys=$TP_KEYS"
  echo "tp_seconds=$TP_SECONDS"
  echo "tp_warmup=$TP_WARMUP"
  echo "connections=$CONNECTIONS"
  echo "ev_limit=$EV_LIMIT"
  echo "ev_keys=$EV_KEYS"
  echo "ev_seconds=$EV_SECONDS"
} >"$RAW/machine.txt"

# --- servers
SERVER_PID="" SERVER_PORT="" SERVER_PROTO=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME LIMIT_MIB: one worker thread, the memory limit, a free loopback port, and
# memcached's default of 1,024 connections on every side (the load opens at most 16). cinchd
# sets aside memory for -c connections out of -m (docs/server.md): -c 4096 would cost it 11 MiB
# more of each limit than the load needs.
start_server() {
  local name=$1 limit=$2
  SERVER_PORT=$(free_port)
  local log="$RAW/server-$name.log"
  local user=()  # both refuse to run as root without -u
  [ "$(id -u)" -eq 0 ] && user=(-u root)
  case "$name" in
    cinchd)
      SERVER_PROTO=memcache
      "${SERVER_CPU[@]}" "$CINCHD" "${user[@]}" -p "$SERVER_PORT" -l 127.0.0.1 -m "$limit" -t 1 \
        -c 1024 >>"$log" 2>&1 &
      ;;
    memcached)
      SERVER_PROTO=memcache
      "${SERVER_CPU[@]}" memcached "${user[@]}" -p "$SERVER_PORT" -U 0 -l 127.0.0.1 \
        -m "$limit" -t 1 -c 1024 >>"$log" 2>&1 &
      ;;
    redis)
      SERVER_PROTO=resp
      "${SERVER_CPU[@]}" redis-server --port "$SERVER_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --maxmemory "${limit}mb" --maxmemory-policy allkeys-lru \
        --daemonize no --maxclients 1024 >>"$log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT") 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "compare: $name did not start; log: $log" >&2
  tail -5 "$log" >&2
  exit 1
}

FAILED=0
# run_load LABEL OUTFILE_STEM [cinch_load flags...]: appends its JSON line to $RESULTS.
run_load() {
  local label=$1 stem=$2
  shift 2
  local rc=0 out
  out=$("${LOAD_CPU[@]}" "$LOAD" -s "127.0.0.1:$SERVER_PORT" -P "$SERVER_PROTO" \
    --server-pid "$SERVER_PID" --label "$label" "$@" 2>"$RAW/$stem.err") || rc=$?
  local json
  json=$(grep '^{' <<<"$out" || true)
  if [ -z "$json" ]; then
    json="{\"label\":\"$label\",\"error\":\"cinch_load exited $rc without a summary\"}"
  fi
  echo "${json%\}},\"exit\":$rc}" >>"$RESULTS"
  grep -v '^{' <<<"$out" | sed 's/^/  /' || true
  if ((rc != 0)); then
    FAILED=1
    echo "  !! exit $rc; stderr: $RAW/$stem.err" >&2
    head -5 "$RAW/$stem.err" >&2 || true
  fi
}

# The servers in the order for scenario number $1: the first one rotates.
rotated() {
  local i=$1 n=${#SERVERS[@]} k
  for ((k = 0; k < n; k++)); do echo "${SERVERS[$(((i + k) % n))]}"; done
}

# each_scenario LIMIT RUN SCENARIO...: for every scenario, each server in turn (rotated), started
# with LIMIT MiB; `RUN INDEX SCENARIO SERVER` runs the load against it.
each_scenario() {
  local limit=$1 run=$2 i=0 scenario server
  shift 2
  for scenario in "$@"; do
    for server in $(rotated $i); do
      start_server "$server" "$limit"
      "$run" "$i" "$scenario" "$server"
      stop_server
    done
    i=$((i + 1))
  done
}

size_spec() { [ "$1" = small ] && echo uniform:32-128 || echo mixed; }
key_spec() { [ "$1" = zipf ] && echo zipf:0.99 || echo uniform; }

start_time=$(date +%s)
echo "== a) throughput and latency (${#TP_SCENARIOS[@]} scenarios x ${#SERVERS[@]} servers)"
tp_run() {
  local ratio keys values depth
  read -r ratio keys values depth <<<"$2"
  run_load "tp|$ratio $keys $values d$depth|$3" "tp-$1-$3" \
    -r "$ratio" -K "$(key_spec "$keys")" -v "$(size_spec "$values")" -d "$depth" \
    -k "$TP_KEYS" -c "$CONNECTIONS" -D "$TP_SECONDS" --warmup "$TP_WARMUP"
}
each_scenario "$TP_LIMIT" tp_run "${TP_SCENARIOS[@]}"

echo "== b) memory: overhead per item ($FILL_KEYS items, 32 B values) and RSS after flush_all"
for server in $(rotated 0); do
  start_server "$server" "$TP_LIMIT"
  sleep 0.5  # let the server settle before the baseline RSS
  run_load "fill|overhead|$server" "fill-$server" -w fill -k "$FILL_KEYS" -v fixed:32 \
    --flush-after 2 --limit-mib "$TP_LIMIT"
  stop_server
done

declare -A W_BEFORE=([W1]=fixed:100 [W2]=fixed:100 [W3]=fixed:100 [W4]=uniform:100-150
  [W5]=uniform:100-150 [W6]=uniform:100-200 [W7]=uniform:1000-2000 [W8]=uniform:50-150)
declare -A W_AFTER=([W1]=fixed:100 [W2]=fixed:130 [W3]=fixed:130 [W4]=uniform:200-250
  [W5]=uniform:200-250 [W6]=uniform:1000-2000 [W7]=uniform:1500-2500 [W8]=uniform:5000-15000)
declare -A W_DELETE=([W1]=0 [W2]=0 [W3]=0.9 [W4]=0 [W5]=0.9 [W6]=0.5 [W7]=0.9 [W8]=0.9)
echo "== b) memory: RAMCloud ${WORKLOADS[*]} at ${MEM_LIMIT} MiB, live set 80 %"
mem_run() {
  local w=$2 server=$3
  run_load "mem|$w|$server" "$w-$server" -w churn --limit-mib "$MEM_LIMIT" \
    -v "${W_BEFORE[$w]}" --after-size "${W_AFTER[$w]}" --delete-fraction "${W_DELETE[$w]}" \
    --write-factor "$WRITE_FACTOR" --rss-log "$RAW/rss-$w-$server.csv"
}
each_scenario "$MEM_LIMIT" mem_run "${WORKLOADS[@]}"

# Size shifts: a cache whose values change size. Each phase writes SHIFT_FACTOR x the limit of
# new keys (the server must evict); then every key of the second phase is read back.
declare -A S_BEFORE=([S1]=fixed:100 [S2]=uniform:100-150 [S3]=uniform:1000-2000)
declare -A S_AFTER=([S1]=fixed:130 [S2]=uniform:1000-2000 [S3]=uniform:100-150)
echo "== b) memory: size shifts ${SHIFTS[*]} at ${SHIFT_LIMIT} MiB, ${SHIFT_FACTOR}x the limit per phase"
shift_run() {
  local s=$2 server=$3
  run_load "shift|$s|$server" "shift-$s-$server" -w shift --limit-mib "$SHIFT_LIMIT" \
    -v "${S_BEFORE[$s]}" --after-size "${S_AFTER[$s]}" --write-factor "$SHIFT_FACTOR"
}
each_scenario "$SHIFT_LIMIT" shift_run "${SHIFTS[@]}"

echo "== c) latency while evicting: ${EV_KEYS} keys into ${EV_LIMIT} MiB, open loop, 90 % sets"
evict_run() {
  local rate=$2 server=$3
  run_load "evict|$rate|$server" "evict-$rate-$server" -r 10:90 -R "$rate" \
    -k "$EV_KEYS" -v uniform:32-128 -c "$CONNECTIONS" -d 16 -D "$EV_SECONDS" --warmup 1 \
    --limit-mib "$EV_LIMIT" --rss-log "$RAW/rss-evict-$rate-$server.csv"
}
each_scenario "$EV_LIMIT" evict_run "${EV_RATES[@]}"

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/machine.txt"
echo "seconds=$(($(date +%s) - start_time))" >>"$RAW/machine.txt"

echo "== report"
"$PYTHON" "$ROOT/bench/compare/report.py" --raw "$RAW" --out "$ROOT/bench/results" --name "$NAME"
echo "compare: wrote bench/results/$NAME.md and bench/results/$NAME-*.png in $(($(date +%s) - start_time)) s"
if ((FAILED)); then
  echo "compare: some runs failed or read wrong values: see the report's 'Problems' section" >&2
  exit 1
fi
