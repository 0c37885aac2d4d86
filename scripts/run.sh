#!/usr/bin/env bash
# Quick start, part 1: install what is missing, build in release mode, and run cinchd with
# memcached's defaults (port 11211 on 127.0.0.1, -m 64 MiB, one worker per core). Flags pass
# through, e.g. scripts/run.sh -m 1024 -p 11311 -v. Stop it with Ctrl-C. Like memcached, cinchd
# refuses to run as root without -u; started as root, this runs it as `nobody` unless the flags
# name another user.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target cinchd
user=()
[ "$(id -u)" -eq 0 ] && user=(-u nobody)
exec build/release/tools/cinchd "${user[@]}" "$@"
