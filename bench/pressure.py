#!/usr/bin/env python3
"""How fast cinchd gives memory back, and what it holds in a small cgroup.

1. `cache_memlimit`: cinchd -m M (default 512) is filled with ~80 % of M in 16 KiB values
   (pipelined sets), then told `cache_memlimit T` (default 64) while VmRSS is sampled every
   5 ms: the time from the command's OK to RSS at or under T, and the rate (MiB/s) RSS fell
   at. A client reading and writing meanwhile counts its operations and errors. Median of
   --runs rounds (the server restarted each round).
2. cgroup: a 96 MiB memory cgroup made under this process's own (v1 or v2; root only,
   skipped with a message otherwise) around `cinchd -m 512`, 400 MB of sets: peak RSS, the
   cgroup's peak usage, limit_maxbytes, OOM kills.

  python3 bench/pressure.py --cinchd build/release/tools/cinchd [--runs 3] [--mib 512] [--to 64]

Prints Markdown; nothing is written. Results are kept in bench/results/pressure.md.
"""

import argparse
import os
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import cgroup_limit  # noqa: E402
import harness  # noqa: E402

MIB = 1 << 20
VALUE = os.urandom(16 * 1024)
BATCH = 64


def fill(port, total, prefix=b"k"):
    with socket.create_connection(("127.0.0.1", port)) as s:
        n = total // len(VALUE)
        for first in range(0, n, BATCH):
            s.sendall(b"".join(b"set %s:%d 0 0 %d noreply\r\n%s\r\n" % (prefix, i, len(VALUE), VALUE)
                               for i in range(first, min(n, first + BATCH))))
        s.sendall(b"mn\r\n")
        buf = b""
        while b"MN\r\n" not in buf:
            buf += s.recv(65536)
        return n


def command(port, line):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(line + b"\r\n")
        buf = b""
        while not buf.endswith(b"\r\n"):
            buf += s.recv(4096)
        return buf


def stats(port, arg=b""):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"stats %s\r\n" % arg)
        buf = b""
        while not buf.endswith(b"END\r\n"):
            buf += s.recv(65536)
    out = {}
    for line in buf.decode().splitlines():
        if line.startswith("STAT "):
            _, k, v = line.split(" ", 2)
            out[k] = v
    return out


class Traffic(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.ops, self.errors = port, 0, 0
        self.stop = threading.Event()

    def run(self):
        c = harness.Conn(self.port, timeout=10)
        i = 0
        while not self.stop.is_set():
            key = b"t:%d" % (i % 1000)
            try:
                value = b"%d" % i * 8
                if c.set(key, value) != b"STORED":
                    self.errors += 1
                if c.get(key) != value:
                    self.errors += 1
                self.ops += 2
            except Exception:
                self.errors += 1
                c = harness.Conn(self.port, timeout=10)
            i += 1
        c.close()


def shrink_round(cinchd, mib, to):
    with harness.Server(cinchd, ["-m", str(mib), "-t", "2"]) as s:
        fill(s.port, mib * MIB * 8 // 10)
        before = s.rss_kib() / 1024
        traffic = Traffic(s.port)
        traffic.start()
        reply = command(s.port, b"cache_memlimit %d" % to)
        start = time.monotonic()
        assert reply == b"OK\r\n", reply
        took, rss = None, before
        while time.monotonic() - start < 30:
            rss = s.rss_kib() / 1024
            if rss <= to:
                took = time.monotonic() - start
                break
            time.sleep(0.005)
        time.sleep(0.5)
        traffic.stop.set()
        traffic.join()
        settled = s.rss_kib() / 1024
        st = stats(s.port, b"cinch")
        return {"before": before, "after": rss, "settled": settled, "took": took,
                "rate": (before - rss) / took if took else 0.0, "ops": traffic.ops,
                "errors": traffic.errors, "evictions": int(st["evictions"]),
                "store_limit": int(st["memory_limit"]) / MIB}


def cgroup_round(cinchd):
    with cgroup_limit.Cgroup(96 * MIB) as cg:
        if cg.path is None:
            return {"skipped": cg.why_not}
        with cgroup_limit.InCgroup(cg, cinchd, ["-m", "512", "-t", "2"]) as s:
            with harness.MemorySampler(s.pid, period=0.01) as rss:
                start = time.monotonic()
                fill(s.port, 400 * MIB)
                took = time.monotonic() - start
            st = stats(s.port)
            peak = cg.read("memory.max_usage_in_bytes") or cg.read("memory.peak") or "0"
            return {"version": cg.version, "peak_rss": rss.max_kib / 1024,
                    "end_rss": s.rss_kib() / 1024, "cgroup_peak": int(peak) / MIB,
                    "limit": int(st["limit_maxbytes"]) / MIB,
                    "source": st.get("memory_limit_source"), "oom_kills": cg.oom_kills(),
                    "alive": s.alive(), "seconds": took, "items": int(st["curr_items"])}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cinchd", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--mib", type=int, default=512)
    p.add_argument("--to", type=int, default=64)
    args = p.parse_args()

    rounds = [shrink_round(args.cinchd, args.mib, args.to) for _ in range(args.runs)]
    print("## cache_memlimit %d after -m %d filled to 80 %%\n" % (args.to, args.mib))
    print("| run | RSS before | RSS at target | time to target | MiB/s | RSS 0.5 s later | "
          "client ops (errors) meanwhile | evictions |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i, r in enumerate(rounds, 1):
        print("| %d | %.1f MiB | %.1f MiB | %s | %.0f | %.1f MiB | %d (%d) | %d |" %
              (i, r["before"], r["after"], "%.3f s" % r["took"] if r["took"] else "not reached",
               r["rate"], r["settled"], r["ops"], r["errors"], r["evictions"]))
    done = [r for r in rounds if r["took"]]
    if done:
        print("\nmedian: %.3f s to target, %.0f MiB/s (store limit %.1f MiB)" %
              (statistics.median(r["took"] for r in done),
               statistics.median(r["rate"] for r in done), rounds[0]["store_limit"]))

    r = cgroup_round(args.cinchd)
    print("\n## cinchd -m 512 in a 96 MiB memory cgroup, 400 MB of sets\n")
    if "skipped" in r:
        print("skipped: %s" % r["skipped"])
        return 0
    print("| cgroup | limit_maxbytes (source) | peak RSS | RSS at end | cgroup peak usage | "
          "OOM kills | alive | items at end | fill time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    print("| v%d | %.1f MiB (%s) | %.1f MiB | %.1f MiB | %.1f MiB | %d | %s | %d | %.1f s |" %
          (r["version"], r["limit"], r["source"], r["peak_rss"], r["end_rss"], r["cgroup_peak"],
           r["oom_kills"], "yes" if r["alive"] else "NO", r["items"], r["seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
