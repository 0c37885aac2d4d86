#!/usr/bin/env python3
"""How long a tenant's key dump holds its worker: another client's round trips meanwhile.

cinchd -t 1 -m 1024 -Y FILE: a user without quota writes N items (key:<i>, 10-byte values)
into the default keyspace; a tenant with 3 items of its own runs `lru_crawler metadump all`,
which walks the whole index to find them. Meanwhile a third connection on the same worker
sends `mn` and waits for `MN` in a loop: its round trips show how long the dump kept the worker
from it. Each --cinchd binary given is measured in turn, R dumps each; prints a Markdown table.

  bench/dump_stall.py --cinchd build/release/tools/cinchd [--cinchd OTHER] [--items N]
"""

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
import key_dump  # noqa: E402


def login(port, user, password):
    s = socket.create_connection(("127.0.0.1", port))
    cred = b"%s %s" % (user, password)
    s.sendall(b"set auth 0 0 %d\r\n%s\r\n" % (len(cred), cred))
    if key_dump.read_to_end(s, b"\r\n", 10) != b"STORED\r\n":
        raise SystemExit("login of %s refused" % user)
    return s


def fill(s, prefix, n):
    batch = []
    for i in range(n):
        batch.append(b"set %s%d 0 0 10 noreply\r\n0123456789\r\n" % (prefix, i))
        if len(batch) == 5000:
            s.sendall(b"".join(batch))
            batch = []
    s.sendall(b"".join(batch) + b"mn\r\n")
    key_dump.read_to_end(s, b"MN\r\n", 120)


def ping_loop(s, stop, rtts):
    while not stop.is_set():
        start = time.monotonic()
        s.sendall(b"mn\r\n")
        key_dump.read_to_end(s, b"MN\r\n", 30)
        rtts.append(time.monotonic() - start)


def measure(path, items, runs, auth_file):
    with harness.Server(path, ["-m", "1024", "-t", "1", "-Y", auth_file]) as server:
        fill(login(server.port, b"admin", b"secret"), b"key:", items)
        tenant = login(server.port, b"tenant", b"secret")
        fill(tenant, b"mine:", 3)
        pinger = login(server.port, b"admin", b"secret")
        worst, p99, dumps, quiet = [], [], [], []
        for _ in range(runs):
            # The client's own worst round trip without a dump, for scale.
            stop, rtts = threading.Event(), []
            t = threading.Thread(target=ping_loop, args=(pinger, stop, rtts))
            t.start()
            time.sleep(0.4)
            stop.set()
            t.join()
            quiet.append(max(rtts))
            stop, rtts = threading.Event(), []
            t = threading.Thread(target=ping_loop, args=(pinger, stop, rtts))
            t.start()
            time.sleep(0.2)
            start = time.monotonic()
            tenant.sendall(b"lru_crawler metadump all\r\n")
            data = key_dump.read_to_end(tenant, b"END\r\n", 120)
            dumps.append(time.monotonic() - start)
            time.sleep(0.2)
            stop.set()
            t.join()
            if data.count(b"key=mine%3A") != 3:
                raise SystemExit("the tenant's dump did not list its 3 keys: %r" % data[:200])
            rtts.sort()
            worst.append(rtts[-1])
            p99.append(rtts[int(len(rtts) * 0.99)])
        return statistics.median(dumps), statistics.median(p99), max(worst), max(quiet)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cinchd", action="append", required=True)
    p.add_argument("--items", type=int, default=2_000_000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".auth") as f:
        f.write("admin:secret\ntenant:secret:16\n")
        f.flush()
        print("| cinchd | tenant's metadump, median ms | other client's mn during it: p99 ms "
              "| worst ms | worst ms without a dump |")
        print("| --- | --- | --- | --- | --- |")
        for path in args.cinchd:
            dump_s, p99_s, worst_s, quiet_s = measure(path, args.items, args.runs, f.name)
            print("| %s | %.1f | %.2f | %.1f | %.1f |" % (path, dump_s * 1e3, p99_s * 1e3,
                                                        worst_s * 1e3, quiet_s * 1e3))


if __name__ == "__main__":
    main()
