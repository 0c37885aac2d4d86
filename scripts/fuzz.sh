#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz", clang; the list is build/fuzz/fuzz/targets.txt,
# written by fuzz/CMakeLists.txt) and runs them:
#   1. as a regression test: every target once over fuzz/regressions/<target>/ and its seed
#      corpus fuzz/corpus/<target>/ (-runs=0);
#   2. as a timed fuzz run: each target for [seconds] (default 60) from a copy of its corpus (the
#      tree is never written, except on a crash). libFuzzer is single-threaded, so as many
#      targets run at once as there are cores (CINCH_FUZZ_JOBS, default nproc): each still gets
#      a core for its whole time.
# A crash, leak, timeout or out-of-memory input is copied into fuzz/regressions/<target>/, to be
# fixed and kept there; the script then exits non-zero (after running the other targets; a
# target that fails its replay is not fuzzed again).
#
# Usage: scripts/fuzz.sh [seconds] [target...]    e.g. scripts/fuzz.sh 30 engine_fuzzer
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift $(($# > 0 ? 1 : 0))
targets=("$@")
parallel="${CINCH_FUZZ_JOBS:-$(nproc)}"

cmake --preset fuzz >/dev/null
((${#targets[@]})) || mapfile -t targets <build/fuzz/fuzz/targets.txt
cmake --build --preset fuzz -j"$(nproc)" --target "${targets[@]}"
bin=build/fuzz/fuzz
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

work="$(mktemp -d "${TMPDIR:-/tmp}/cinch-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
failed=()

# Keeps what libFuzzer saved in $work/<target>/artifacts as regressions of <target>.
keep_artifacts() {
  local target="$1" f
  mkdir -p "fuzz/regressions/$target"
  for f in "$work/$target/artifacts"/*; do
    [ -e "$f" ] || continue
    cp "$f" "fuzz/regressions/$target/"
    echo "fuzz: $target: kept fuzz/regressions/$target/$(basename "$f")"
  done
}

for target in "${targets[@]}"; do
  # A new target has no regressions yet (git keeps no empty directory).
  mkdir -p "$work/$target/artifacts" "$work/$target/replayed" "$work/$target/corpus" \
    "fuzz/regressions/$target"
  echo "=== fuzz: $target: regressions + seed corpus"
  if ! "$bin/$target" -runs=0 -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$work/$target/replayed/" \
      "fuzz/regressions/$target" "fuzz/corpus/$target" >"$work/$target/replay.log" 2>&1; then
    tail -n 40 "$work/$target/replay.log"
    echo "fuzz: $target: FAILED on a regression or seed input"
    failed+=("$target")
  fi
done

# Fuzzes one target (in the background); its exit status goes to $work/<target>/status.
fuzz_one() {
  local target="$1" dict=() rc=0
  cp "fuzz/corpus/$target"/* "$work/$target/corpus/"
  find "fuzz/regressions/$target" -type f ! -name README.md -exec cp {} "$work/$target/corpus/" \;
  [ -f "fuzz/$target.dict" ] && dict=(-dict="fuzz/$target.dict")
  "$bin/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 "${dict[@]}" -artifact_prefix="$work/$target/artifacts/" \
    "$work/$target/corpus" >"$work/$target/fuzz.log" 2>&1 || rc=$?
  echo "$rc" >"$work/$target/status"
}

fuzzing=()
for target in "${targets[@]}"; do
  # A target that failed its replay would only find the same input again.
  [[ " ${failed[*]} " == *" $target "* ]] && continue
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
  echo "=== fuzz: $target: fuzzing for ${seconds}s"
  fuzz_one "$target" &
  fuzzing+=("$target")
done
wait

for target in "${fuzzing[@]}"; do
  if [ "$(cat "$work/$target/status" 2>/dev/null)" = 0 ]; then
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec)' \
      "$work/$target/fuzz.log" | sed "s/^/fuzz: $target: /"
  else
    tail -n 60 "$work/$target/fuzz.log"
    echo "fuzz: $target: FAILED"
    failed+=("$target")
  fi
  keep_artifacts "$target"
done

if ((${#failed[@]})); then
  echo "=== fuzz: failures in: ${failed[*]} (inputs kept in fuzz/regressions/)"
  exit 1
fi
echo "=== fuzz: all targets passed (${seconds}s each)"
