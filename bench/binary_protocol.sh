#!/usr/bin/env bash
# Binary protocol throughput: cinchd against memcached 1.6.18, the same client (cinch_load,
# every value verified) speaking memcached's binary protocol to both, then the text protocol for
# reference; one run each. Prints a Markdown table (results/binary-protocol.md keeps one).
#
# usage: bench/binary_protocol.sh [seconds per run, default 10]
# Both servers run with -t 1 -m 256 on CPU 0 and the client on CPU 1 when there are two cores
# (BENCH_PIN=0 turns pinning off); 16 connections, 16 requests in flight on each, 90 % gets,
# 100,000 keys of 100-byte values, all set once before a 2 s warm-up.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_RUN=${1:-10}
cd "$ROOT"
cmake --preset release >/dev/null
cmake --build --preset release -j2 --target cinchd cinch_load >/dev/null
CINCHD="$ROOT/build/release/tools/cinchd"
LOAD="$ROOT/build/release/tools/load/cinch_load"
MEMCACHED=$(command -v memcached)

SERVER_CPU=() LOAD_CPU=()
if [ "${BENCH_PIN:-1}" != 0 ] && (($(nproc) >= 2)) && command -v taskset >/dev/null; then
  SERVER_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1)
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; }
trap cleanup EXIT

# run SERVER_BINARY PROTOCOL: one line of the table.
run() {
  local server=$1 proto=$2 port name
  name=$(basename "$server")
  port=$(free_port)
  "${SERVER_CPU[@]}" "$server" -p "$port" -l 127.0.0.1 -U 0 -t 1 -m 256 -u root \
    >/dev/null 2>&1 &
  PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  local json
  json=$("${LOAD_CPU[@]}" "$LOAD" -s "127.0.0.1:$port" -P "$proto" -w mixed -c 16 -d 16 \
    -r 90:10 -k 100000 -v fixed:100 -D "$SECONDS_PER_RUN" --warmup 2 --server-pid "$PID" |
    grep '^{')
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
  python3 - "$name" "$proto" "$json" <<'EOF'
import json, sys
name, proto, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
lat = r["lat_us"]
print("| %s | %s | %.0f | %.0f | %.0f | %.0f | %.2f | %d |" % (
    name, proto, r["ops_per_s"], lat["p50"], lat["p99"], lat["p999"], r["hit_ratio"],
    r["wrong"] + r["errors"]))
EOF
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "memcached: $("$MEMCACHED" -V 2>&1 | head -1); cinchd: $("$CINCHD" -V 2>&1 | head -1)"
echo "pinned: $((${#SERVER_CPU[@]} > 0 ? 1 : 0)); ${SECONDS_PER_RUN} s per run"
echo
echo "| server | protocol | ops/s | p50 µs | p99 µs | p99.9 µs | hit ratio | wrong+errors |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for proto in memcache-binary memcache; do
  run "$MEMCACHED" "$proto"
  run "$CINCHD" "$proto"
done
