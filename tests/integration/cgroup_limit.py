#!/usr/bin/env python3
"""cinchd holds its RSS under its cgroup's memory limit, whatever -m says.

Creates a memory cgroup of 96 MiB under the test's own (v1: memory.limit_in_bytes, where this
process's memory cgroup is; else v2: memory.max, under the test's own cgroup), starts
`cinchd -m 512` inside it, and writes 400 MB through pymemcache while VmRSS is sampled:

  * cinchd is never OOM-killed (alive at the end; the cgroup's OOM kill count is 0);
  * its RSS stays under the cgroup's limit all along (the peak is printed);
  * `stats` shows limit_maxbytes below 96 MiB, memory_limit_source cgroup, and the start-up
    log says why in one line;
  * it keeps serving: the last values written read back.

Skips, saying why, when no memory cgroup can be created (not root, no writable hierarchy).
"""

import os
import time

import harness

MIB = 1 << 20
CGROUP_MIB = 96
WRITE_MB = 400
VALUE = 16 * 1024


def own_cgroups():
    v1 = v2 = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            ident, controllers, path = line.rstrip("\n").split(":", 2)
            if ident == "0" and controllers == "":
                v2 = path
            elif "memory" in controllers.split(","):
                v1 = path
    return v1, v2


def mount_points():
    v1 = v2 = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            dash = fields.index("-")
            fstype, options = fields[dash + 1], fields[dash + 3].split(",")
            if fstype == "cgroup" and "memory" in options and v1 is None and fields[3] == "/":
                v1 = fields[4]
            if fstype == "cgroup2" and v2 is None and fields[3] == "/":
                v2 = fields[4]
    return v1, v2


class Cgroup:
    """A memory cgroup of `limit` bytes made for the test, removed afterwards."""

    def __init__(self, limit):
        self.limit = limit
        self.path = None
        self.version = None
        self.why_not = None

    def __enter__(self):
        if os.geteuid() != 0:
            self.why_not = "not root"
            return self
        own_v1, own_v2 = own_cgroups()
        mount_v1, mount_v2 = mount_points()
        name = "cinch-it-%d" % os.getpid()
        attempts = []
        if own_v1 is not None and mount_v1:
            attempts.append((1, os.path.join(mount_v1 + own_v1, name), "memory.limit_in_bytes"))
        if own_v2 is not None and mount_v2:
            attempts.append((2, os.path.join(mount_v2 + own_v2, name), "memory.max"))
        reasons = []
        for version, path, limit_file in attempts:
            try:
                os.mkdir(path)
            except OSError as e:
                reasons.append("v%d %s: %s" % (version, path, e))
                continue
            try:
                with open(os.path.join(path, limit_file), "w") as f:
                    f.write(str(self.limit))
                self.path, self.version = path, version
                return self
            except OSError as e:
                reasons.append("v%d %s: %s" % (version, limit_file, e))
                os.rmdir(path)
        self.why_not = "; ".join(reasons) or "no memory cgroup hierarchy mounted"
        return self

    def __exit__(self, *exc):
        if self.path:
            for _ in range(50):  # the server's exit takes its pages out a moment later
                try:
                    os.rmdir(self.path)
                    break
                except OSError:
                    time.sleep(0.1)
        return False

    def read(self, name):
        try:
            with open(os.path.join(self.path, name)) as f:
                return f.read()
        except OSError:
            return ""

    def oom_kills(self):
        text = self.read("memory.oom_control" if self.version == 1 else "memory.events")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0


class InCgroup(harness.Server):
    """A server that enters `cgroup` before it runs: sh writes its pid to cgroup.procs, then
    execs the server (same pid)."""

    def __init__(self, cgroup, path, args):
        super().__init__(path, args)
        self.procs = os.path.join(cgroup.path, "cgroup.procs")

    def argv(self, port):
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', self.procs] + super().argv(port)


def main(args):
    harness.skip_unless_cinch(args, "cgroup limit")
    from pymemcache.client.base import Client
    ctx = harness.Checker(args.verbose)
    with Cgroup(CGROUP_MIB * MIB) as cg:
        if cg.path is None:
            print("SKIPPED: cannot create a memory cgroup: %s" % cg.why_not, flush=True)
            return harness.SKIP
        print("cgroup v%d %s, limit %d MiB" % (cg.version, cg.path, CGROUP_MIB), flush=True)
        value = os.urandom(VALUE)
        with InCgroup(cg, args.server, ["-m", "512", "-t", "2"]) as s:
            client = Client(("127.0.0.1", s.port), connect_timeout=5, timeout=30)
            st = {k.decode(): v for k, v in client.stats().items()}
            limit = int(st["limit_maxbytes"])
            ctx.check(limit < CGROUP_MIB * MIB, "limit_maxbytes is under the cgroup's limit",
                      "%d" % limit)
            ctx.check(st.get("memory_limit_source") == b"cgroup", "memory_limit_source is cgroup",
                      str(st.get("memory_limit_source")))
            ctx.check("cgroup v%d" % cg.version in s.log(), "the start-up log names the cgroup",
                      s.log()[-1000:])
            count = WRITE_MB * MIB // VALUE
            with harness.MemorySampler(s.pid, period=0.01) as rss:
                batch = {}
                for i in range(count):
                    batch[b"k:%d" % i] = value
                    if len(batch) == 32:
                        failed = client.set_many(batch, noreply=False)
                        ctx.check(not failed, "sets stored", "%d failed" % len(failed))
                        batch = {}
                if batch:
                    client.set_many(batch, noreply=False)
            print("wrote %d MB: peak RSS %.1f MiB in a %d MiB cgroup (limit_maxbytes %.1f MiB), "
                  "cgroup peak usage %.1f MiB" %
                  (WRITE_MB, rss.max_kib / 1024, CGROUP_MIB, limit / MIB,
                   int(cg.read("memory.max_usage_in_bytes") or cg.read("memory.peak") or 0) / MIB),
                  flush=True)
            ctx.check(rss.max_kib * 1024 < CGROUP_MIB * MIB, "RSS stays under the cgroup's limit",
                      "peak %d KiB" % rss.max_kib)
            ctx.check(client.get(b"k:%d" % (count - 1)) == value, "the last value reads back", "")
            ctx.check(s.alive(), "cinchd is alive after %d MB" % WRITE_MB, s.log()[-1000:])
            ctx.check(cg.oom_kills() == 0, "no OOM kill in the cgroup", str(cg.oom_kills()))
            client.close()
    return ctx.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=240)
