#!/usr/bin/env bash
# bench/bazel_build.sh [--runs N] [--caches none,disk,http,grpc]: Bazel's second-build wall
# time with no cache, --disk_cache, and cinchd over http:// and grpc://, side by side in one
# run (bench/bazel_build.py says how), into bench/results/bazel-build.md. Builds cinchd in
# release mode first; Debian's bazel-bootstrap comes from scripts/setup.sh. Offline; about a
# minute per run of all four.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target cinchd
exec /usr/bin/python3 "$ROOT/bench/bazel_build.py" --cinchd "$ROOT/build/release/tools/cinchd" \
  --out "$ROOT/bench/results/bazel-build.md" "$@"
