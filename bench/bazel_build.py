#!/usr/bin/env python3
"""Bazel's second-build wall time with no cache, --disk_cache, and cinchd over http:// and
grpc://, side by side in one run (bench/bazel_build.sh builds cinchd and runs this).

The workspace is tests/integration/bazel_workspace.py's (40 genrules of 16 B .. 2 MiB, an
output directory, a C++ binary). For each cache, in rotating order, `--runs` times: a fresh
cache (a new cinchd, an empty disk cache directory), a first build (every action runs and is
uploaded), `bazel clean`, and the timed second build. One Bazel server serves every build, so
the JVM start is not in the times; the Bazel client's own start is. Prints a Markdown table:
median and minimum of the second build, the first build's median, and the second build's
remote cache hits (Bazel 4 counts disk cache hits as "remote cache hit" too).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import bazel_workspace  # noqa: E402
import harness  # noqa: E402

CINCHD_ARGS = ["-m", "256", "-I", "4m"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cinchd", required=True)
    p.add_argument("--bazel", default=bazel_workspace.BAZEL)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--caches", default="none,disk,http,grpc")
    p.add_argument("--out", help="also write the table to this Markdown file")
    return p.parse_args()


def cinchd(path, proto):
    port = harness.free_port()
    return harness.Server(path, CINCHD_ARGS + ["--%s-port" % proto, str(port)]), port


def one_run(bazel, root, args, cache, n):
    """(first build, second build) against a fresh cache of kind `cache`."""
    server = None
    if cache == "none":
        options = ["--remote_cache=", "--disk_cache="]
    elif cache == "disk":
        options = ["--remote_cache=", "--disk_cache=" + os.path.join(root, "disk%d" % n)]
    else:
        server, port = cinchd(args.cinchd, cache)
        server.start()
        _wait_port(port)
        options = ["--disk_cache=", "--remote_cache=%s://127.0.0.1:%d" % (cache, port)]
    try:
        builds = []
        for _ in range(2):
            bazel.clean()
            b = bazel.build(*options)
            if b.code != 0:
                raise RuntimeError("%s build failed:\n%s" % (cache, b.tail()))
            builds.append(b)
        return builds
    finally:
        if server:
            server.stop()


def _wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while not harness.can_connect(port):
        if time.monotonic() > end:
            raise RuntimeError("port %d not listening" % port)
        time.sleep(0.05)


def main():
    args = parse_args()
    caches = args.caches.split(",")
    root = tempfile.mkdtemp(prefix="cinch-bazel-bench-")
    ws = bazel_workspace.write(os.path.join(root, "src"))
    bazel = bazel_workspace.Bazel(ws, os.path.join(root, "src", "mock_repos"),
                                  os.path.join(root, "bazel"), args.bazel)
    results = {c: [] for c in caches}
    try:
        warm = bazel.build("--remote_cache=", "--disk_cache=")  # server start, analysis
        print("warm-up build (Bazel server start, analysis, all actions): %.1f s"
              % warm.seconds, flush=True)
        for n in range(args.runs):
            order = caches[n % len(caches):] + caches[:n % len(caches)]
            for cache in order:
                first, second = one_run(bazel, root, args, cache, n)
                results[cache].append((first, second))
                print("run %d %-5s first %5.1f s  second %5.1f s  %s" %
                      (n + 1, cache, first.seconds, second.seconds, second.summary()),
                      flush=True)
    finally:
        bazel.shutdown()
        harness.stop_all()
        bazel_workspace.remove_tree(root)
    lines = ["| cache | second build, median | min | first build, median | "
             "second build's processes |",
             "| ----- | -------------------: | --: | ------------------: | "
             "------------------------ |"]
    for cache in caches:
        seconds = [s.seconds for _, s in results[cache]]
        firsts = [f.seconds for f, _ in results[cache]]
        lines.append("| %s | %.2f s | %.2f s | %.2f s | %s |" %
                     (cache, statistics.median(seconds), min(seconds),
                      statistics.median(firsts),
                      results[cache][-1][1].summary().replace("INFO: ", "")))
    lines.append("")
    lines.append("%d runs each; Bazel server start and analysis (warm-up) %.1f s; %d cores; "
                 "load average %s at the end; %s" %
                 (args.runs, warm.seconds, os.cpu_count(), open("/proc/loadavg").read().split()[0],
                  time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("\n" + "\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            f.write("# Bazel second build: no cache, --disk_cache, cinchd http and grpc\n\n"
                    "Written by bench/bazel_build.sh (bench/bazel_build.py says what is timed)."
                    "\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
