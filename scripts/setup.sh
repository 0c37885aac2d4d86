#!/usr/bin/env bash
# Installs what building and testing cinch needs, from Debian's packages, if it is missing.
# Safe to run again: it only calls apt when a package is absent.
set -euo pipefail

PACKAGES=(
  build-essential cmake g++ pkg-config
  libgtest-dev libgmock-dev googletest libbenchmark-dev libxxhash-dev liburing-dev
  memcached libmemcached-tools python3 python3-pymemcache python3-pylibmc python3-binary-memcached
  libsasl2-modules  # the PLAIN plugin libmemcached's SASL (pylibmc, memcstat) logs in with
  netcat-openbsd
  clang-14 libclang-rt-14-dev
  libssl-dev libhttp-parser-dev curl
  python3-prometheus-client  # parses GET /metrics in tests/integration/metrics.py
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc bazel-bootstrap-source
  python3-grpcio python3-protobuf
  bazel-bootstrap
  nutcracker haproxy  # scale-out tests: twemproxy and haproxy in front of three cinchd
  groff-base systemd  # packaging tests: the man page renders, systemd-analyze verify
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
