#!/usr/bin/env bash
# Quick start, part 2: install what is missing, build, and run every test:
#   1. release build: all tests;
#   2. ASan + UBSan build: all tests;
#   3. TSan build: the concurrency tests (label "concurrency", incl. the network layer), the
#      store's unit tests, and the server's (label "server": unit and integration); the preset
#      picks them (CINCH_TEST_LABELS), and builds only those;
#   4. fuzz (clang): the libFuzzer targets replay their regressions and seeds, then fuzz for
#      CINCH_FUZZ_SECONDS (default 60) each (scripts/fuzz.sh).
# Exits non-zero as soon as a leg fails. Legs can be picked: scripts/test.sh release tsan
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs="$(nproc)"
legs=("$@")
((${#legs[@]})) || legs=(release asan-ubsan tsan fuzz)

for leg in "${legs[@]}"; do
  echo "=== test leg: $leg"
  cmake --preset "$leg" >/dev/null
  cmake --build --preset "$leg" -j"$jobs"
  case "$leg" in
    fuzz) scripts/fuzz.sh "${CINCH_FUZZ_SECONDS:-60}" ;;
    *) ctest --preset "$leg" -j"$jobs" ;;
  esac
done
echo "=== all test legs passed: ${legs[*]}"
