#!/usr/bin/env bash
# Runs every integration script against one server binary, e.g.
#   tests/integration/run_all.sh /usr/bin/memcached
#   tests/integration/run_all.sh build/release/tools/cinchd
# Exit 77 from a script means "skipped" (a cinch-only check given memcached).
set -u
server=${1:?usage: run_all.sh SERVER_BINARY}
dir=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
[ -x "$python" ] || python=python3
passed=0 failed=0 skipped=0
for t in memccapable clients binary differential expiry signals auth tenants restart http_cache \
    command_line memory_limit memory_range thp hostile bazel_cache scale_twemproxy scale_clients \
    scale_haproxy; do
  echo "=== $t"
  "$python" "$dir/$t.py" --server "$server"
  case $? in
    0) passed=$((passed + 1)) ;;
    77) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)); echo "=== $t FAILED" ;;
  esac
done
echo "scripts: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
