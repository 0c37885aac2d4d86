#!/usr/bin/env python3
"""What a build farm's small CAS blobs cost in memory: cinchd's HTTP cache against memcached.

Uploads N blobs of 40-128 random bytes (sha256-named, as Bazel's CAS) to
  * cinchd --http-port: PUT /cas/<sha256 hex>, pipelined on one keep-alive connection,
  * memcached: `set <sha256 hex> 0 0 <len> noreply`, pipelined (the hex key is how a
    memcached-backed cache names a blob),
each started fresh with the same -m, and reads both servers' RSS before and after. Prints the
RSS per blob beyond what the blob must cost (32 digest bytes + payload), and the upload rate.

  python3 bench/buildcache_rss.py --cinchd build/release/tools/cinchd [--blobs 1000000]
"""

import argparse
import hashlib
import os
import random
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402
from buildcache_throughput import drain  # noqa: E402

BATCH = 2000


def blobs(n, seed, skip=0):
    rng = random.Random(seed)
    for i in range(n):
        if i < skip:
            rng.randbytes(rng.randint(40, 128))
            continue
        body = rng.randbytes(rng.randint(40, 128))
        yield hashlib.sha256(body).hexdigest(), body


def wait_port(port, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        if harness.can_connect(port):
            return
        time.sleep(0.05)
    raise RuntimeError("port %d never answered" % port)


def upload_http(port, n, seed, skip=0):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    batch, sent = [], 0
    for hexd, body in blobs(n, seed, skip):
        batch.append(b"PUT /cas/%s HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n%s"
                     % (hexd.encode(), len(body), body))
        if len(batch) == BATCH:
            s.sendall(b"".join(batch))
            drain(s, len(batch), b"HTTP/1.1 200")
            sent += len(batch)
            batch = []
    if batch:
        s.sendall(b"".join(batch))
        drain(s, len(batch), b"HTTP/1.1 200")
    s.close()


def upload_memcached(port, n, seed, skip=0):
    s = socket.create_connection(("127.0.0.1", port))
    batch = []
    for hexd, body in blobs(n, seed, skip):
        batch.append(b"set %s 0 0 %d noreply\r\n%s\r\n" % (hexd.encode(), len(body), body))
        if len(batch) == BATCH:
            s.sendall(b"".join(batch))
            batch = []
    s.sendall(b"".join(batch) + b"mn\r\n")
    drain(s, 1, b"MN\r\n")
    s.close()


def payload_bytes(n, seed, skip=0):
    return sum(len(b) for _, b in blobs(n, seed, skip))


def measure(name, argv, port, upload, n, seed):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        time.sleep(0.3)
        before = harness.rss_kib(proc.pid)
        t0 = time.time()
        upload(port, n // 2, seed)
        half_took = time.time() - t0
        time.sleep(0.3)
        half = harness.rss_kib(proc.pid)
        t1 = time.time()
        upload(port, n, seed, skip=n // 2)
        took = half_took + time.time() - t1
        time.sleep(0.3)
        after = harness.rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    return {"name": name, "before": before, "half": half, "after": after, "seconds": took}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cinchd", required=True)
    p.add_argument("--memcached", default="/usr/bin/memcached")
    p.add_argument("--blobs", type=int, default=1_000_000)
    p.add_argument("--memory", type=int, default=1024, help="-m for both, MiB")
    args = p.parse_args()
    n, seed = args.blobs, 12
    payload = payload_bytes(n, seed)
    must = payload + 32 * n  # digest + payload: what a blob costs at the least
    mc_port, http_port, c_port = harness.free_port(), harness.free_port(), harness.free_port()
    root = ["-u", "root"] if os.geteuid() == 0 else []  # both refuse root without -u
    runs = [
        measure("cinchd http", [args.cinchd, *root, "-p", str(c_port), "-l", "127.0.0.1", "-m",
                                str(args.memory), "-t", "2", "--http-port", str(http_port)],
                http_port, upload_http, n, seed),
        measure("memcached", [args.memcached, *root, "-p", str(mc_port), "-l", "127.0.0.1",
                              "-U", "0", "-m", str(args.memory), "-t", "2"],
                mc_port, upload_memcached, n, seed),
    ]
    print("%d CAS blobs of 40-128 B: payload %.1f MiB, digest + payload %.1f MiB"
          % (n, payload / 2**20, must / 2**20))
    # Marginal: what the second half of the blobs added (fixed costs such as threads, open
    # segments and the first index pages were paid by the first half).
    second = n - n // 2
    must2 = payload_bytes(n, seed, skip=n // 2) + 32 * second
    print("| server | RSS growth MiB | B/blob beyond digest+payload: all | marginal (2nd half) "
          "| uploads/s |")
    print("| --- | --- | --- | --- | --- |")
    for r in runs:
        grown = (r["after"] - r["before"]) * 1024
        grown2 = (r["after"] - r["half"]) * 1024
        print("| %s | %.1f | %.1f | %.1f | %.0f |" % (r["name"], grown / 2**20, (grown - must) / n,
                                                     (grown2 - must2) / second,
                                                     n / r["seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
