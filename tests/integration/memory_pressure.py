#!/usr/bin/env python3
"""cinchd gives memory back when the host is short of it: real memory pressure, end to end.

Two servers, filled: one as started by default, one with `-o memory_pressure=0`. Then a
reader in a 32 MiB memory cgroup of its own (created under the test's, as cgroup_limit.py
does) reads a 200 MiB file over and over: its page cache cannot fit, every page is refaulted
from disk, and the kernel counts the time it stalls on memory in /proc/pressure/memory (PSI).
The servers are outside that cgroup: what they see is the host's pressure.

  * the default server lowers its limit (stats: pressure_shrinks > 0, limit_maxbytes below
    -m, memory_limit_source pressure), says so in one log line, and its RSS follows;
  * it keeps serving throughout: sets store and read back;
  * the server with memory_pressure=0 keeps its limit.

Skips, saying why, where there is no PSI, no memory cgroup can be created (not root), or the
reader's file would live in memory (tmpfs), and where the reader caused no stall at all.
"""

import os
import subprocess
import sys
import tempfile
import time

import harness
from cgroup_limit import Cgroup

MIB = 1 << 20
SERVER_MIB = 256
FILL_MB = 320  # more than the store holds: it is full when the pressure comes
VALUE = 16 * 1024
READER_CGROUP_MIB = 32
READER_FILE_MIB = 200
WAIT = 60.0  # seconds of pressure at most, until the server has shrunk

READER = r"""
import mmap, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    total = 0
    while True:
        for i in range(0, len(m), 4096):
            total += m[i]
"""


def psi_some_total():
    try:
        with open("/proc/pressure/memory") as f:
            for line in f:
                if line.startswith("some "):
                    return int(line.split("total=")[1])
    except OSError:
        return None
    return None


def wait_for_calm(limit=20.0):
    """Returns once the host's memory stall has stopped growing (under 10 ms in a second), at
    most `limit` seconds on: the servers of the tests that run next must not meet the pressure
    this test made (a cinchd watching it would shrink)."""
    until = time.monotonic() + limit
    last = psi_some_total()
    while last is not None and time.monotonic() < until:
        time.sleep(1.0)
        now = psi_some_total()
        if now - last < 10000:
            return
        last = now


def on_tmpfs(path):
    best, fstype = "", ""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            mount = fields[1]
            if (path == mount or path.startswith(mount.rstrip("/") + "/")) and \
                    len(mount) >= len(best):
                best, fstype = mount, fields[2]
    return fstype in ("tmpfs", "ramfs")


def stats(client):
    return {k.decode(): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in client.stats().items()}


def fill(client, value):
    count = FILL_MB * MIB // VALUE
    batch = {}
    for i in range(count):
        batch[b"k:%d" % i] = value
        if len(batch) == 32:
            client.set_many(batch, noreply=False)
            batch = {}
    if batch:
        client.set_many(batch, noreply=False)


def main(args):
    harness.skip_unless_cinch(args, "memory pressure")
    from pymemcache.client.base import Client
    if psi_some_total() is None:
        print("SKIPPED: no PSI (/proc/pressure/memory) on this kernel", flush=True)
        return harness.SKIP
    scratch = tempfile.mkdtemp(prefix="cinch-pressure-", dir="/var/tmp")
    if on_tmpfs(scratch):
        os.rmdir(scratch)
        print("SKIPPED: /var/tmp is in memory: a reader of it makes no pressure", flush=True)
        return harness.SKIP
    ctx = harness.Checker(args.verbose)
    reader = None
    data = os.path.join(scratch, "data")
    try:
        with Cgroup(READER_CGROUP_MIB * MIB) as cg:
            if cg.path is None:
                print("SKIPPED: cannot create a memory cgroup: %s" % cg.why_not, flush=True)
                return harness.SKIP
            base = ["-m", str(SERVER_MIB), "-t", "2"]
            with harness.Server(args.server, base, host_pressure=True) as watched, \
                    harness.Server(args.server, base + ["-o", "memory_pressure=0"]) as fixed:
                value = os.urandom(VALUE)
                cw = Client(("127.0.0.1", watched.port), connect_timeout=5, timeout=30)
                cf = Client(("127.0.0.1", fixed.port), connect_timeout=5, timeout=30)
                fill(cw, value)
                fill(cf, value)
                before_f = stats(cf)

                # The reader writes its file from inside the cgroup (so that its page cache is
                # charged there), then reads it for as long as it is let.
                enter = 'echo $$ > "$0" && exec "$@"'
                procs = os.path.join(cg.path, "cgroup.procs")
                psi_start = psi_some_total()
                subprocess.run(["/bin/sh", "-c", enter, procs, "dd", "if=/dev/urandom",
                                "of=" + data, "bs=1M", "count=%d" % READER_FILE_MIB,
                                "status=none"], check=True, timeout=120)
                # The host may be short already (writing the file, what ran before): the test
                # asks for the shrinks the reader's pressure adds.
                before_w = stats(cw)
                rss_before = harness.rss_kib(watched.pid)
                reader = subprocess.Popen(["/bin/sh", "-c", enter, procs, sys.executable, "-c",
                                           READER, data])
                deadline = time.monotonic() + WAIT
                shrunk, served, errors = None, 0, 0
                while time.monotonic() < deadline:
                    st = stats(cw)
                    key = b"during:%d" % served
                    cw.set(key, value, noreply=False)
                    if cw.get(key) == value:
                        served += 1
                    else:
                        errors += 1
                    if int(st["pressure_shrinks"]) > int(before_w["pressure_shrinks"]):
                        shrunk = st
                        break
                    time.sleep(0.2)
                stalled_us = psi_some_total() - psi_start
                reader.kill()
                reader.wait()
                reader = None
                print("reader in a %d MiB cgroup: the host stalled on memory %.2f s; server "
                      "shrank: %s" % (READER_CGROUP_MIB, stalled_us / 1e6, shrunk is not None),
                      flush=True)
                if shrunk is None and stalled_us == 0:
                    print("SKIPPED: the reader made no memory stall on this host", flush=True)
                    return harness.SKIP
                ctx.check(shrunk is not None, "the server shrinks under the host's pressure",
                          "stalled %d us; log: %s" % (stalled_us, watched.log()[-800:]))
                if shrunk is not None:
                    ctx.check(int(shrunk["limit_maxbytes"]) < int(before_w["limit_maxbytes"]),
                              "limit_maxbytes is lowered",
                              "%s -> %s" % (before_w["limit_maxbytes"], shrunk["limit_maxbytes"]))
                    ctx.equal(shrunk["memory_limit_source"], "pressure",
                              "memory_limit_source is pressure")
                    ctx.check("(pressure)" in watched.log(), "one log line says why",
                              watched.log()[-800:])
                    # The store gets under the new limit within seconds.
                    target_kib = int(shrunk["limit_maxbytes"]) // 1024
                    rss = harness.rss_kib(watched.pid)
                    until = time.monotonic() + 30
                    while rss > target_kib and time.monotonic() < until:
                        time.sleep(0.1)
                        rss = harness.rss_kib(watched.pid)
                    print("RSS %.1f -> %.1f MiB (limit %.1f MiB)" %
                          (rss_before / 1024, rss / 1024, target_kib / 1024), flush=True)
                    ctx.check(rss <= target_kib, "RSS follows the lowered limit",
                              "%d KiB over %d" % (rss, target_kib))
                ctx.check(served > 0 and errors == 0, "serving goes on under pressure",
                          "%d served, %d wrong" % (served, errors))
                after_f = stats(cf)
                ctx.equal(after_f["limit_maxbytes"], before_f["limit_maxbytes"],
                          "memory_pressure=0 keeps its limit")
                ctx.equal(after_f["pressure_shrinks"], "0", "memory_pressure=0 never shrinks")
                cw.close()
                cf.close()
    finally:
        if reader is not None:
            reader.kill()
            reader.wait()
        if os.path.exists(data):
            os.unlink(data)
        os.rmdir(scratch)
        wait_for_calm()
    return ctx.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=240)
