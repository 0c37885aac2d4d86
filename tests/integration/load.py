#!/usr/bin/env python3
"""The load generator against a real server, end to end: cinch_load's mixed workload (depth 1
and 16) and its fill workload, each with the generator on io_uring and on epoll, against
cinchd on io_uring and on epoll (`-o io_uring=0`); and its shift workload (values change size
from 100 to 130 B in a full cache), where cinchd must keep giving its memory to the current
data (memcached's slabs calcify: it keeps about 2 % of its limit there). Every hit is checked byte for byte by the
generator; the run fails on any wrong value, error reply, refused set or missing key. This is
what bench/compare.sh relies on, and it drives both of the server's event loops with
thousands of pipelined and non-pipelined requests."""

import json
import os
import subprocess

import harness


def extra(p):
    p.add_argument("--load", required=True, help="the cinch_load binary")


def run_load(c, load, port, what, args):
    argv = [load, "-s", "127.0.0.1:%d" % port] + args
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        c.check(False, what, "cinch_load did not finish in 60 s")
        return None
    line = next((l for l in out.stdout.splitlines() if l.startswith("{")), None)
    if not c.check(out.returncode == 0 and line is not None, what + ": cinch_load succeeded",
                   "exit %d\n%s%s" % (out.returncode, out.stdout[-2000:], out.stderr[-2000:])):
        return None
    r = json.loads(line)
    c.equal(r.get("error"), "", what + ": no error")
    c.equal(r.get("wrong"), 0, what + ": no wrong value")
    return r


def mixed(c, load, server, io, depth, server_io):
    what = "mixed d%d, generator on %s, server on %s" % (depth, io, server_io)
    r = run_load(c, load, server.port,
                 what, ["--io", io, "-d", str(depth), "-c", "8", "-k", "20000", "-r", "80:20",
                        "-D", "1", "--warmup", "0.2"])
    if r is None:
        return
    c.equal(r["io"], io, what + ": the generator used " + io)
    c.check(r["gets"] > 1000 and r["sets"] > 100, what + ": requests were made",
            "gets %d sets %d" % (r["gets"], r["sets"]))
    c.equal(r["misses"], 0, what + ": every preloaded key hits (nothing evicted at -m 256)")
    c.equal(r["not_stored"] + r["errors"], 0, what + ": no refusals or error replies")


def fill(c, load, server, io, server_io):
    what = "fill 30000 keys, generator on %s, server on %s" % (io, server_io)
    r = run_load(c, load, server.port, what, ["--io", io, "-w", "fill", "-k", "30000",
                                              "-v", "uniform:12-3000"])
    if r is None:
        return
    c.equal(r["io"], io, what + ": the generator used " + io)
    c.equal(r.get("kept_fraction"), 1, what + ": every key read back")


def shift(c, load, server_path):
    """100 B values, then 130 B, each phase writing 2x a 32 MiB limit."""
    if os.environ.get("CINCH_SANITIZE"):
        # ~2 M sets through a sanitized server and generator take minutes, and the memory
        # figures mean nothing under shadow memory; the release leg runs it.
        c.skip("shift 100 -> 130 B", "sanitizer build")
        return
    # cinch_load opens a few connections; -c sizes the connections' share of -m (docs/server.md).
    with harness.Server(server_path, ["-m", "32", "-t", "1", "-c", "64"]) as server:
        what = "shift 100 -> 130 B at -m 32"
        r = run_load(c, load, server.port, what,
                     ["-w", "shift", "--limit-mib", "32", "-v", "fixed:100", "--after-size",
                      "fixed:130", "--write-factor", "2", "--server-pid", str(server.proc.pid)])
        if r is None:
            return
        c.equal(r["not_stored"] + r["errors"], 0, what + ": no refusals or error replies")
        c.check(r["kept"] > 0, what + ": phase C keys were read back", "kept %d" % r["kept"])
        if not harness.is_memcached(server_path):
            # Measured 0.60 (process reserve ~7 MiB of the 32, index, headers); memcached 0.02.
            c.check(r["retained_over_limit"] > 0.45, what + ": over 45 % of -m holds phase C data",
                    "retained %.3f of the limit" % r["retained_over_limit"])
            c.check(r["rss_peak_over_limit"] <= 1.0, what + ": RSS stayed within -m",
                    "peak RSS / limit %.3f" % r["rss_peak_over_limit"])


def main(args):
    c = harness.Checker(args.verbose)
    shift(c, args.load, args.server)
    for server_io in ("io_uring", "epoll"):
        server_args = ["-m", "256", "-t", "2"]
        if server_io == "epoll":
            if harness.is_memcached(args.server):
                continue
            server_args += ["-o", "io_uring=0"]
        with harness.Server(args.server, server_args) as server:
            if not harness.is_memcached(args.server):
                with server.conn() as conn:
                    settings = conn.stats(b"settings")
                c.equal(settings.get("io_uring_workers"), "2" if server_io == "io_uring" else "0",
                        "server on %s: stats settings io_uring_workers" % server_io)
            for io in ("uring", "epoll"):
                for depth in (1, 16):
                    mixed(c, args.load, server, io, depth, server_io)
                fill(c, args.load, server, io, server_io)
            c.check(server.alive(), "server on %s still running" % server_io,
                    server.log()[-2000:])
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__, extra), time_limit=240)
