#!/usr/bin/env python3
"""memcached's `cache_memlimit` on cinchd: the process shrinks and grows again at run time.

  replies:  every reply to cache_memlimit (good, too small, too large, bad numbers, token
            counts, noreply) is memcached 1.6.18's, byte for byte, side by side with it; and
            `stats` / `stats settings` show the new limit as memcached's do.
  shrink:   cinchd -m 512 filled with ~400 MB through pymemcache; `cache_memlimit 64`: RSS
            falls under 64 MiB while a second client keeps reading and writing with no error
            (the time it takes is printed; bench/pressure.py measures it); `stats` says
            limit_maxbytes 64 MiB, memory_limit_source cache_memlimit.
  option:   `-o memory_pressure=0` shows in `stats settings`; cache_memlimit applies either way.
  grow:     `cache_memlimit 512`: another 300 MB of sets and RSS grows past 200 MiB again,
            limit_maxbytes back at 512 MiB (source -m).
The shrink and grow server runs with the pressure watcher off, so that the host's own memory
pressure cannot move the limits it checks.
"""

import os
import threading
import time

import harness

MIB = 1 << 20
VALUE = 16 * 1024
RSS_WAIT = 30.0  # seconds; the wait ends at the event (RSS under the limit), this only bounds it
# Under sanitizers RSS holds their shadow memory and quarantine: the RSS checks are off there,
# the store's own figure (stats cinch resident_bytes) is checked instead.
SANITIZED = bool(os.environ.get("CINCH_SANITIZE"))


def raw(conn, line, expect_reply=True):
    conn.send(line + b"\r\n")
    if not expect_reply:
        return None
    return conn.read_line()


def replies(server):
    """cache_memlimit lines and what the server answers, in order (noreply lines answer
    nothing: a `version` after each shows the next reply is the version's)."""
    c = server.conn()
    out = []
    for line in [b"cache_memlimit", b"cache_memlimit 100", b"cache_memlimit 7", b"cache_memlimit 8",
                 b"cache_memlimit 0", b"cache_memlimit -1", b"cache_memlimit -0",
                 b"cache_memlimit abc", b"cache_memlimit 12abc", b"cache_memlimit 1000000001",
                 b"cache_memlimit 4294967296", b"cache_memlimit 4294967396",
                 b"cache_memlimit 18446744073709551616", b"cache_memlimit 100 x",
                 b"cache_memlimit 100 noreply x", b"cache_memlimit 7 noreply",
                 b"cache_memlimit -1 noreply", b"cache_memlimit 100 noreply",
                 b"cache_memlimit noreply", b"cache_memlimit  40", b"cache_memlimit 32"]:
        c.send(line + b"\r\nversion\r\n")
        first = c.read_line()
        if not first.startswith(b"VERSION"):
            c.read_line()  # the version's line
        out.append((line, first if not first.startswith(b"VERSION") else b"(nothing)"))
    stats = stats_of(c, b"stats")
    settings = stats_of(c, b"stats settings")
    c.close()
    return out, stats.get("limit_maxbytes"), settings.get("maxbytes")


def stats_of(conn, command):
    conn.send(command + b"\r\n")
    out = {}
    while True:
        line = conn.read_line()
        if line == b"END\r\n":
            return out
        parts = line.decode().split()
        out[parts[1]] = parts[2]


def check_replies(ctx, args):
    with harness.Server(harness.MEMCACHED, ["-m", "64"]) as mc, \
         harness.Server(args.server, ["-m", "64"]) as cinch:
        want, want_limit, want_max = replies(mc)
        got, got_limit, got_max = replies(cinch)
    for (line, w), (_, g) in zip(want, got):
        ctx.check(g == w, "reply to %r" % line, "cinchd %r, memcached %r" % (g, w))
    ctx.check(got_limit == want_limit == str(32 * MIB), "stats limit_maxbytes follows",
              "cinchd %s, memcached %s" % (got_limit, want_limit))
    ctx.check(got_max == want_max == str(32 * MIB), "stats settings maxbytes follows",
              "cinchd %s, memcached %s" % (got_max, want_max))


def check_pressure_option(ctx, args):
    """-o memory_pressure=0 shows in stats settings; cache_memlimit applies all the same."""
    for option, shown in ((None, "yes"), ("memory_pressure=0", "no")):
        with harness.Server(args.server, ["-m", "64"] + (["-o", option] if option else []),
                            host_pressure=True) as s:
            c = s.conn()
            ctx.equal(stats_of(c, b"stats settings").get("memory_pressure"), shown,
                      "stats settings memory_pressure with %s" % option)
            ctx.equal(raw(c, b"cache_memlimit 32"), b"OK\r\n", "cache_memlimit with %s" % option)
            ctx.equal(stats_of(c, b"stats").get("limit_maxbytes"), str(32 * MIB),
                      "limit_maxbytes with %s" % option)
            c.close()


def fill(client, prefix, total, value):
    keys = 0
    batch = {}
    for i in range(total // len(value)):
        batch[b"%s:%d" % (prefix, i)] = value
        if len(batch) == 64:
            failed = client.set_many(batch, noreply=False)
            if failed:
                raise AssertionError("set_many failed for %d keys" % len(failed))
            keys += len(batch)
            batch = {}
    if batch:
        client.set_many(batch, noreply=False)
        keys += len(batch)
    return keys


class Traffic:
    """A client reading and writing on its own thread until stopped; counts errors."""

    def __init__(self, port, value):
        from pymemcache.client.base import Client
        self.client = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
        self.value = value
        self.ops = self.errors = 0
        self.last_error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        i = 0
        while not self._stop.is_set():
            key = b"traffic:%d" % (i % 500)
            try:
                if not self.client.set(key, self.value, noreply=False):
                    raise AssertionError("set returned false")
                got = self.client.get(key)
                if got is not None and got != self.value:
                    raise AssertionError("get returned other bytes")
                self.ops += 1
            except Exception as e:  # any failure of the server to answer is an error here
                self.errors += 1
                self.last_error = repr(e)
            i += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)
        self.client.close()
        return False


def resident_kib(server, conn):
    """VmRSS, or under sanitizers the store's own resident bytes."""
    if not SANITIZED:
        return server.rss_kib()
    return int(stats_of(conn, b"stats cinch")["resident_bytes"]) // 1024


def wait_rss_below(server, kib, seconds):
    start = time.monotonic()
    conn = server.conn()
    try:
        while time.monotonic() - start < seconds:
            rss = resident_kib(server, conn)
            if rss is not None and rss <= kib:
                return time.monotonic() - start, rss
            time.sleep(0.01)
        return None, resident_kib(server, conn)
    finally:
        conn.close()


def check_shrink_and_grow(ctx, args):
    from pymemcache.client.base import Client
    value = os.urandom(VALUE)
    # The pressure watcher is off: the host's memory pressure (tests running beside this one
    # can stall the machine on memory) would move the limit this test sets and checks
    # (memory_pressure.py tests the watcher; check_pressure_option shows that cache_memlimit
    # applies with it on too).
    with harness.Server(args.server, ["-m", "512", "-t", "2", "-o", "memory_pressure=0"]) as s:
        client = Client(("127.0.0.1", s.port), connect_timeout=5, timeout=30)
        fill(client, b"a", 400 * MIB, value)
        full = s.rss_kib() if not SANITIZED else 400 * 1024
        ctx.check(full > 300 * 1024, "400 MB of sets fill the 512 MiB process",
                  "RSS %d KiB" % full)
        with Traffic(s.port, value[:1000]) as traffic:
            client.cache_memlimit(64)
            target = 64 * 1024
            if SANITIZED:  # the store's share of it (the process's own memory is theirs)
                with s.conn() as c:
                    target = int(stats_of(c, b"stats cinch")["memory_limit"]) // 1024
            took, rss = wait_rss_below(s, target, RSS_WAIT)
            ops_before = traffic.ops
            time.sleep(0.2)  # traffic after the shrink too (the thread counts it)
            ctx.check(took is not None, "RSS falls under 64 MiB after cache_memlimit 64",
                      "RSS %s KiB after %.0f s" % (rss, RSS_WAIT))
            if took is not None:
                print("shrink: RSS %.1f MiB -> %.1f MiB in %.2f s" % (full / 1024, rss / 1024, took),
                      flush=True)
        ctx.check(traffic.errors == 0, "a client reading and writing meanwhile sees no error",
                  "%d errors, last %s" % (traffic.errors, traffic.last_error))
        ctx.check(traffic.ops > ops_before, "serving continues at the lower limit",
                  "%d ops, %d before" % (traffic.ops, ops_before))
        st = {k.decode(): v for k, v in client.stats().items()}
        ctx.check(int(st["limit_maxbytes"]) == 64 * MIB, "limit_maxbytes is 64 MiB",
                  str(st["limit_maxbytes"]))
        ctx.check(st.get("memory_limit_source") == b"cache_memlimit",
                  "memory_limit_source says cache_memlimit", str(st.get("memory_limit_source")))
        ctx.check(client.get(b"traffic:1") is not None or client.set(b"x", b"y"),
                  "items still served", "")
        low = s.rss_kib()
        ctx.check(b"cache_memlimit" in s.log().encode(), "the change is logged", s.log()[-500:])

        client.cache_memlimit(512)
        fill(client, b"b", 300 * MIB, value)
        grown = s.rss_kib() if not SANITIZED else resident_kib(s, s.conn())
        ctx.check(grown > 200 * 1024, "after cache_memlimit 512 the cache grows again",
                  "RSS %d KiB (was %d KiB at 64)" % (grown, low))
        st = {k.decode(): v for k, v in client.stats().items()}
        ctx.check(int(st["limit_maxbytes"]) == 512 * MIB, "limit_maxbytes is back at 512 MiB",
                  str(st["limit_maxbytes"]))
        ctx.check(st.get("memory_limit_source") == b"-m", "memory_limit_source says -m",
                  str(st.get("memory_limit_source")))
        ctx.check(client.get(b"b:%d" % (300 * MIB // VALUE - 1)) == value,
                  "the last value written reads back", "")
        client.close()


def main(args):
    harness.skip_unless_cinch(args, "cache_memlimit shrinking RSS is cinch's")
    ctx = harness.Checker(args.verbose)
    check_replies(ctx, args)
    check_pressure_option(ctx, args)
    check_shrink_and_grow(ctx, args)
    return ctx.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=240)
