#!/usr/bin/env python3
"""Listing keys: `lru_crawler metadump all` on cinchd and memcached 1.6.18, side by side.

Each server (-m 1024 -t 2) gets N items (key:<i>, 10-byte values) from one pipelined client;
then the dump is read to its END, R times: wall time, lines, and how many of the N keys the
lines name (memcached's crawler may miss items it meets while they move in its LRU). Prints a
Markdown table; writes nothing. About 20 s for 1 M items.

  bench/key_dump.py --cinchd build/release/tools/cinchd [--items N] [--runs R]
"""

import argparse
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
import key_dump  # noqa: E402


def fill(port, n):
    s = socket.create_connection(("127.0.0.1", port))
    batch = []
    for i in range(n):
        batch.append(b"set key:%d 0 0 10 noreply\r\n0123456789\r\n" % i)
        if len(batch) == 5000:
            s.sendall(b"".join(batch))
            batch = []
    s.sendall(b"".join(batch) + b"mn\r\n")
    key_dump.read_to_end(s, b"MN\r\n", 120)
    s.close()


def dump(port):
    s = socket.create_connection(("127.0.0.1", port))
    start = time.monotonic()
    s.sendall(b"lru_crawler metadump all\r\n")
    data = key_dump.read_to_end(s, b"\nEND\r\n", 300)
    seconds = time.monotonic() - start
    s.close()
    lines = [line for line in data.split(b"\n") if line.startswith(b"key=")]
    keys = {line.split(b" ", 1)[0] for line in lines}
    return seconds, len(lines), len(keys)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cinchd", required=True)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    rows = []
    for name, path in (("memcached 1.6.18", harness.MEMCACHED), ("cinchd", args.cinchd)):
        with harness.Server(path, ["-m", "1024", "-t", "2"]) as server:
            fill(server.port, args.items)
            runs = [dump(server.port) for _ in range(args.runs)]
            rss = server.rss_kib()
        times = [r[0] for r in runs]
        rows.append((name, statistics.median(times), min(times), max(times),
                     min(r[2] for r in runs), rss))
    print("| server | metadump of %d items: median s (range) | fewest keys listed | RSS MiB |"
          % args.items)
    print("| --- | --- | --- | --- |")
    for name, med, lo, hi, fewest, rss in rows:
        print("| %s | %.3f (%.3f-%.3f) | %d | %.0f |" % (name, med, lo, hi, fewest, rss / 1024))
    harness.stop_all()


if __name__ == "__main__":
    main()
