#!/usr/bin/env bash
# Quick start, part 1: install what is missing, build in release mode, and run cinch.
# Until the cinchd server lands, "running cinch" means the engine benchmark driver with its
# named workloads (pass its flags through, e.g. --benchmarks=overhead or --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target cinch_bench
exec build/release/bench/cinch_bench "${@:---quick}"
