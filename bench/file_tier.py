#!/usr/bin/env python3
"""The file tier against memcached's extstore, side by side in one run (issue 13's target).

Each server starts fresh with `-m 64 -o ext_path=DIR/<name>:2G` (memcached 1.6.18 also gets
`-u` when run as root); then one fast client:
  1. write: pipelines `set <key> <flags> 0 <len> noreply` for 1 GiB of values (200 B .. 100 KiB,
     log-uniform; bytes, length and flags follow from the key, so every read is verified),
     then `mn`: write MB/s is the whole 1 GiB over the time until `mn` is answered;
  2. latency: 5,000 single `get`s of random keys, one at a time; each is classed by the
     server's own counter read after it (cinchd: tier_waits, the get waited for the tier's I/O
     threads; memcached: get_extstore) as a RAM hit, a file hit or a miss; p50/p99/p99.9 each;
  3. read back: every key, in pipelined batches of 100: % kept, corrupt values;
while VmRSS is sampled every 20 ms: peak RSS / -m.

  python3 bench/file_tier.py --cinchd build/release/tools/cinchd [--gib 1] [--dir /var/tmp]

The file lives in --dir (default: a temporary directory); its pages sit in the page cache, so
"file hits" here are mostly page-cache reads unless the machine is short of memory.
"""

import argparse
import math
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402

MIN_SIZE, MAX_SIZE = 200, 100 * 1024
BLOB = random.Random(13).randbytes(2 * MAX_SIZE)
LIMIT_MIB = 64
TIER = "2G"
WRITE_BATCH = 64
READ_BATCH = 100
LATENCY_SAMPLES = 5000


def key_of(i, size):
    return b"ft:%d:%d" % (i, size)


def value_for(key):
    size = int(key.split(b":")[2])
    off = zlib.crc32(key) % (len(BLOB) - size)
    return BLOB[off:off + size]


def flags_for(key):
    return zlib.crc32(key[::-1])


def make_keys(total, seed=1):
    rng = random.Random(seed)
    keys, n = [], 0
    while n < total:
        size = int(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))
        keys.append(key_of(len(keys), size))
        n += size
    return keys, n


class Rss:
    def __init__(self, pid):
        self.pid, self.max_kib = pid, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            kib = harness.rss_kib(self.pid)
            if kib:
                self.max_kib = max(self.max_kib, kib)
            self._stop.wait(0.02)

    def stop(self):
        self._stop.set()
        self._t.join()


class Reader:
    def __init__(self, sock):
        self.sock, self.buf = sock, bytearray()

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise RuntimeError("server closed the connection")
        self.buf += data


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, Reader(s)


def write_all(port, keys):
    s, r = connect(port)
    start = time.monotonic()
    for b in range(0, len(keys), WRITE_BATCH):
        s.sendall(b"".join(b"set %s %d 0 %d noreply\r\n%s\r\n" %
                           (k, flags_for(k), len(value_for(k)), value_for(k))
                           for k in keys[b:b + WRITE_BATCH]))
    s.sendall(b"mn\r\n")
    line = r.line()
    took = time.monotonic() - start
    s.close()
    if line != b"MN":
        raise RuntimeError("unexpected reply after the writes: %r" % line[:100])
    return took


def get_reply(r):
    """{key: (flags, value)} up to END."""
    out = {}
    while True:
        line = r.line()
        if line == b"END":
            return out
        parts = line.split()
        value = r.exact(int(parts[3]) + 2)[:-2]
        out[parts[1]] = (int(parts[2]), value)


def stats(s, r):
    s.sendall(b"stats\r\n")
    out = {}
    while True:
        line = r.line()
        if line == b"END":
            return out
        p = line.split()
        if len(p) >= 3:
            out[p[1].decode()] = p[2].decode()


def latency(port, keys, counter):
    s, r = connect(port)
    rng = random.Random(5)
    samples = {"RAM hit": [], "file hit": [], "miss": []}
    before = int(stats(s, r).get(counter, 0))
    bad = 0
    for _ in range(LATENCY_SAMPLES):
        k = keys[rng.randrange(len(keys))]
        t0 = time.perf_counter_ns()
        s.sendall(b"get %s\r\n" % k)
        got = get_reply(r)
        us = (time.perf_counter_ns() - t0) / 1000.0
        after = int(stats(s, r).get(counter, 0))
        if k not in got:
            samples["miss"].append(us)
        else:
            bad += got[k] != (flags_for(k), value_for(k))
            samples["file hit" if after > before else "RAM hit"].append(us)
        before = after
    s.close()
    return samples, bad


def read_all(port, keys):
    s, r = connect(port)
    kept = corrupt = 0
    for b in range(0, len(keys), READ_BATCH):
        batch = keys[b:b + READ_BATCH]
        s.sendall(b"get " + b" ".join(batch) + b"\r\n")
        got = get_reply(r)
        for k in batch:
            if k in got:
                kept += 1
                corrupt += got[k] != (flags_for(k), value_for(k))
    s.close()
    return kept, corrupt


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(math.ceil(p / 100.0 * len(v))) - 1)]


def run_one(name, argv_base, tier_path, keys, total, counter):
    server = harness.Server(argv_base, ["-m", str(LIMIT_MIB), "-t", "2",
                                        "-o", "ext_path=%s:%s" % (tier_path, TIER)],
                            start_timeout=30)
    server.start()
    rss = Rss(server.pid)
    try:
        took = write_all(server.port, keys)
        samples, bad_sampled = latency(server.port, keys, counter)
        kept, corrupt = read_all(server.port, keys)
        s, r = connect(server.port)
        st = stats(s, r)
        s.close()
    finally:
        rss.stop()
        server.stop()
    return {
        "name": name,
        "write_mbs": total / took / 1e6,
        "kept_pct": 100.0 * kept / len(keys),
        "corrupt": corrupt + bad_sampled,
        "peak_rss_mib": rss.max_kib / 1024.0,
        "samples": samples,
        "stats": st,
    }


def report(results, keys, total):
    print("\n%d keys, %.2f GiB of values (%d B .. %d KiB, log-uniform), -m %d, ext_path %s\n" %
          (len(keys), total / float(1 << 30), MIN_SIZE, MAX_SIZE // 1024, LIMIT_MIB, TIER))
    print("| | " + " | ".join(r["name"] for r in results) + " |")
    print("|---|" + "---|" * len(results))
    rows = [("kept", lambda r: "%.1f %%" % r["kept_pct"]),
            ("corrupt values", lambda r: "%d" % r["corrupt"]),
            ("peak RSS / -m", lambda r: "%.1f MiB / %d = %.2f" %
             (r["peak_rss_mib"], LIMIT_MIB, r["peak_rss_mib"] / LIMIT_MIB)),
            ("write (one pipelined client)", lambda r: "%.0f MB/s" % r["write_mbs"])]
    for cls in ("RAM hit", "file hit", "miss"):
        rows.append(("get latency, %s: n, p50 / p99 / p99.9" % cls,
                     lambda r, cls=cls: "%d, %.0f / %.0f / %.0f µs" % (
                         len(r["samples"][cls]), pct(r["samples"][cls], 50),
                         pct(r["samples"][cls], 99), pct(r["samples"][cls], 99.9))))
    for label, f in rows:
        print("| %s | %s |" % (label, " | ".join(f(r) for r in results)))
    for r in results:
        st = r["stats"]
        names = [n for n in sorted(st) if n.startswith(("tier_", "extstore_", "get_extstore",
                                                        "recache_from", "miss_from", "evictions"))]
        print("\n%s: %s" % (r["name"], ", ".join("%s %s" % (n, st[n]) for n in names)))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cinchd", required=True)
    p.add_argument("--memcached", default=harness.MEMCACHED)
    p.add_argument("--gib", type=float, default=1.0)
    p.add_argument("--dir", default=None, help="where the tier files go (default: a temp dir)")
    p.add_argument("--only", choices=("cinchd", "memcached"), default=None)
    a = p.parse_args()
    keys, total = make_keys(int(a.gib * (1 << 30)))
    tmp = tempfile.mkdtemp(prefix="cinch-tier-bench-", dir=a.dir)
    results = []
    try:
        if a.only in (None, "cinchd"):
            results.append(run_one("cinchd", os.path.abspath(a.cinchd), tmp + "/cinch.tier",
                                   keys, total, "tier_waits"))
        if a.only in (None, "memcached"):
            results.append(run_one("memcached 1.6.18", a.memcached, tmp + "/memcached.tier",
                                   keys, total, "get_extstore"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, keys, total)


if __name__ == "__main__":
    main()
