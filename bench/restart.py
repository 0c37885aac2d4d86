#!/usr/bin/env python3
"""Warm restart: cinchd -e against memcached -e, in the same run.

For each server: start it with -e FILE, fill it with N items (keys "key:<i>", 32-byte values,
pipelined `set ... noreply`), stop it gracefully (cinchd SIGTERM, memcached SIGUSR1: its
restartable stop) and time the stop (the save), then start it again with the same -e and -m and
time from the exec to the first successful `get` of a key written first and of one written last
("ready"). Then kill -9 and start once more: memcached's file and cinchd's (consumed by the
load) both give an empty start after a crash. The numbers are the median of --runs rounds.

memcached mmaps its -e file and documents it for a tmpfs or persistent memory only, so both
files go to /dev/shm unless --dir says otherwise; cinchd also runs with its file on --disk-dir
(a disk: the save syncs it). -m is the same for both.

  python3 bench/restart.py --cinchd build/release/tools/cinchd [--items 1000000] [--runs 3]
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402

VALUE = b"v" * 32
BATCH = 5000


def argv(binary, port, memory_mb, path):
    root = ["-u", "root"] if os.geteuid() == 0 else []  # both refuse root without -u
    return [binary, *root, "-p", str(port), "-l", "127.0.0.1", "-U", "0", "-t", "2",
            "-m", str(memory_mb), "-e", path]


def fill(port, n):
    with socket.create_connection(("127.0.0.1", port)) as s:
        for first in range(0, n, BATCH):
            s.sendall(b"".join(b"set key:%d 0 0 %d noreply\r\n%s\r\n" % (i, len(VALUE), VALUE)
                               for i in range(first, min(n, first + BATCH))))
        s.sendall(b"mn\r\n")  # meta no-op: its reply comes after every set before it
        buf = b""
        while b"MN\r\n" not in buf:
            buf += s.recv(65536)


def get_ok(port, key):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"get %s\r\n" % key)
            buf = b""
            while not buf.endswith(b"END\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            return buf.startswith(b"VALUE")
    except OSError:
        return False


def cpu_seconds(pid):
    """User + system CPU time the process has used (10 ms resolution)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_until_ready(cmd, port, keys, timeout=60.0):
    """Starts the server; returns (process, seconds until every key in `keys` is served; None if
    not within timeout)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pending = list(keys)
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        if not harness.can_connect(port, timeout=0.05):
            time.sleep(0.001)
            continue
        pending = [k for k in pending if not get_ok(port, k)]
        if not pending:
            return proc, time.monotonic() - t0
        if time.monotonic() - t0 > 2:  # serving, but not these keys: not restored
            return proc, None
        time.sleep(0.001)
    return proc, None


def stop(proc, sig):
    t0 = time.monotonic()
    proc.send_signal(sig)
    proc.wait(120)
    return time.monotonic() - t0, proc.stderr.read().decode("utf-8", "replace")


def one_round(name, binary, path, stop_sig, n, memory_mb):
    if os.path.exists(path):
        os.unlink(path)
    port = harness.free_port()
    cmd = argv(binary, port, memory_mb, path)
    keys = [b"key:0", b"key:%d" % (n - 1)]
    proc, cold = start_until_ready(cmd, port, [])
    fill(port, n)
    rss = harness.rss_kib(proc.pid)
    save, log1 = stop(proc, stop_sig)
    stopped_at = time.time()
    size = os.path.getsize(path)
    # memcached refuses a restart within the second it stopped in ("restart incompatible due to
    # setting for [stop_time]"): both restart in the next second or later.
    while time.time() < int(stopped_at) + 1.05:
        time.sleep(0.01)
    proc, ready = start_until_ready(cmd, port, keys)
    served = ready is not None
    cpu = cpu_seconds(proc.pid) if served else None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log2 = proc.stderr.read().decode("utf-8", "replace")
    port = harness.free_port()  # the killed process's port may linger a moment
    cmd = argv(binary, port, memory_mb, path)
    proc, _ = start_until_ready(cmd, port, [])
    after_kill = get_ok(port, b"key:0")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log3 = proc.stderr.read().decode("utf-8", "replace")
    os.unlink(path)
    return {"name": name, "cold": cold, "save": save, "ready": ready, "served": served,
            "cpu": cpu,
            "file_mib": size / 2**20, "rss_mib": rss / 1024, "after_kill": after_kill,
            "logs": (log1 + log2 + log3).strip()}


def median(rows, key):
    vals = [r[key] for r in rows if r[key] is not None]
    return statistics.median(vals) if vals else None


def spread(rows, key):
    """"median (min-max)" of a time, in seconds."""
    vals = [r[key] for r in rows if r[key] is not None]
    if not vals:
        return "not restored"
    return "%.3f (%.3f-%.3f)" % (statistics.median(vals), min(vals), max(vals))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cinchd", required=True)
    p.add_argument("--memcached", default=harness.MEMCACHED)
    p.add_argument("--items", type=int, default=1000000)
    p.add_argument("--memory", type=int, default=256, help="-m in MiB for both")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dir", default="/dev/shm")
    p.add_argument("--disk-dir", default=tempfile.gettempdir())
    p.add_argument("--verbose", "-v", action="store_true")
    args = p.parse_args()
    setups = [
        ("cinchd -e (tmpfs)", args.cinchd, os.path.join(args.dir, "cinch-bench.mem"),
         signal.SIGTERM),
        ("memcached -e (tmpfs)", args.memcached, os.path.join(args.dir, "mc-bench.mem"),
         signal.SIGUSR1),
        ("cinchd -e (disk)", args.cinchd, os.path.join(args.disk_dir, "cinch-bench.mem"),
         signal.SIGTERM),
    ]
    results = {name: [] for name, _, _, _ in setups}
    for r in range(args.runs):  # alternating, so that a busy moment hits both
        for name, binary, path, sig in setups:
            row = one_round(name, binary, path, sig, args.items, args.memory)
            results[name].append(row)
            if args.verbose:
                print("run %d %s: ready %s s, save %.3f s\n%s" %
                      (r, name, row["ready"], row["save"], row["logs"]), flush=True)
    print("%d items (%d-byte values), -m %d, median (min-max) of %d runs\n" %
          (args.items, len(VALUE), args.memory, args.runs))
    print("| server | ready after restart (s) | CPU used until ready (s) | cold start (s) "
          "| save: stop to exit (s) | file (MiB) | RSS full (MiB) | items served after restart "
          "| after kill -9 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        print("| %s | %s | %s | %s | %s | %.1f | %.1f | %d of %d runs | %s |" % (
            name, spread(rows, "ready"), spread(rows, "cpu"), spread(rows, "cold"),
            spread(rows, "save"),
            median(rows, "file_mib"), median(rows, "rss_mib"),
            sum(r["served"] for r in rows), len(rows),
            "empty" if not any(r["after_kill"] for r in rows) else "items served"))


if __name__ == "__main__":
    main()
