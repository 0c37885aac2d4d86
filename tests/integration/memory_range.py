#!/usr/bin/env python3
"""cinchd accepts any -m from 1 MiB to 1 TiB (cinch-specific: checks cinchd's stats and RSS).

  -m 1:        starts (lowering the default -I to 512 KiB, with a warning); serves set/get of
               small items and of a 400 KiB item; a 600 KiB item is refused as too large; 8 MiB
               of writes (eviction) keep it serving, with RSS within the bound `stats cinch`
               reports as process_limit (the process's own reserve plus the smallest store).
  -m 1 -I 1m:  refused, as memcached refuses it (an -I given explicitly is not lowered).
  -m 2:        starts with the default -I 1m and stores a 1000 KiB item.
  -m 1048576:  1 TiB starts; 200,000 items set and read back; RSS, the segment table and the
               index follow the data, not the limit; idle CPU over 3 s is reported.
  -m 1048577:  refused with a message naming the range.
"""

import os
import random
import subprocess
import time

import harness

ITEMS_1TIB = 200_000
RSS_1TIB_MAX_KIB = 64 * 1024  # 200k small items on an idle 1 TiB server: ~28 MiB measured


def mib(kib):
    return "%.1f MiB" % (kib / 1024.0)


def cpu_seconds(pid):
    """utime + stime of `pid` from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def set_many(conn, keys, value):
    """Pipelined `noreply` sets, then a round trip so they have all been applied."""
    for i in range(0, len(keys), 1000):
        conn.send(b"".join(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(value), value)
                           for k in keys[i:i + 1000]))
    conn.call(b"version\r\n")


def one_mib(c, args):
    with harness.Server(args.server, ["-m", "1", "-t", "1"]) as server:
        log = server.log()
        c.check("-I" in log and "512 KiB" in log, "-m 1: warns that the default -I is lowered",
                log[-500:])
        c.check("resident memory may reach" in log, "-m 1: warns that RSS may exceed -m",
                log[-500:])
        with server.conn() as conn:
            c.equal(conn.set(b"small", b"hello"), b"STORED", "-m 1: set")
            c.equal(conn.get(b"small"), b"hello", "-m 1: get")
            big = random.Random(1).randbytes(400 * 1024)
            c.equal(conn.set(b"big", big), b"STORED", "-m 1: set of a 400 KiB item")
            c.check(conn.get(b"big") == big, "-m 1: get of the 400 KiB item")
            too_big = conn.set(b"huge", b"x" * (600 * 1024))
            c.check(too_big.startswith(b"SERVER_ERROR"), "-m 1: a 600 KiB item is too large",
                    "got %r" % too_big)
            settings = conn.stats(b"settings")
            c.equal(settings.get("item_size_max"), str(512 * 1024), "-m 1: item_size_max")
            c.equal(settings.get("maxbytes"), str(1 << 20), "-m 1: maxbytes is -m")
            value = b"v" * 1000
            keys = [b"fill:%d" % i for i in range(8 * 1024)]
            max_rss = 0
            for i in range(0, len(keys), 512):
                set_many(conn, keys[i:i + 512], value)
                max_rss = max(max_rss, server.rss_kib() or 0)
            c.equal(conn.set(b"last", b"still here"), b"STORED", "-m 1: set after 8 MiB")
            c.equal(conn.get(b"last"), b"still here", "-m 1: get after 8 MiB")
            present = sum(conn.get(k) == value for k in keys[-200:])
            c.check(present > 0, "-m 1: recent items are present", "0 of the last 200")
            cinch = conn.stats(b"cinch")
            bound_kib = int(cinch["process_limit"]) // 1024
            c.note("-m 1: store %s in %s KiB segments, process reserve %s, bound %s; max RSS "
                   "%s, %d of the last 200 items present" %
                   (mib(int(cinch["memory_limit"]) // 1024),
                    int(cinch["segment_size"]) // 1024,
                    mib(int(cinch["process_reserve"]) // 1024), mib(bound_kib), mib(max_rss),
                    present))
            c.check(max_rss <= bound_kib, "-m 1: RSS within process_limit",
                    "max RSS %s > %s" % (mib(max_rss), mib(bound_kib)))
            c.check(int(cinch["evictions"]) > 0, "-m 1: 8 MiB of writes evicted items")


def refused(c, args, argv, what, want):
    proc = subprocess.run([args.server, "-p", "0", "-U", "0", "-l", "127.0.0.1"] + argv,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    err = proc.stderr.decode("utf-8", "replace")
    c.check(proc.returncode != 0, "%s: refused" % what, "exit %d" % proc.returncode)
    c.check(want in err, "%s: says why" % what, "stderr %r" % err)


def two_mib(c, args):
    with harness.Server(args.server, ["-m", "2", "-t", "1"]) as server:
        c.check("lowers the default item size" not in server.log(), "-m 2: keeps -I 1m")
        with server.conn() as conn:
            big = random.Random(2).randbytes(1000 * 1024)
            c.equal(conn.set(b"big", big), b"STORED", "-m 2: set of a 1000 KiB item")
            c.check(conn.get(b"big") == big, "-m 2: get of the 1000 KiB item")


def one_tib(c, args):
    started = time.monotonic()
    with harness.Server(args.server, ["-m", "1048576", "-t", "2"]) as server:
        took = time.monotonic() - started
        idle_kib = server.rss_kib()
        with server.conn(timeout=30) as conn:
            value = b"x" * 32
            keys = [b"key:%d" % i for i in range(ITEMS_1TIB)]
            set_many(conn, keys, value)
            wrong = [k for k in keys[::997] if conn.get(k) != value]
            c.check(not wrong, "1 TiB: items read back", "%d wrong, e.g. %r" % (len(wrong),
                                                                            wrong[:3]))
            stats = conn.stats()
            c.equal(stats.get("limit_maxbytes"), str(1 << 40), "1 TiB: limit_maxbytes")
            c.equal(stats.get("curr_items"), str(ITEMS_1TIB), "1 TiB: curr_items")
            cinch = conn.stats(b"cinch")
        time.sleep(0.5)  # let the write heads go idle
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        time.sleep(3)
        cpu = cpu_seconds(server.pid) - cpu0
        wall = time.monotonic() - t0
        rss = server.rss_kib()
        c.note("1 TiB: started in %.2f s, RSS idle %s, with %d items %s (index %s, segment "
               "table %d KiB); idle CPU %.2f s over %.1f s" %
               (took, mib(idle_kib), ITEMS_1TIB, mib(rss), mib(int(cinch["index_bytes"]) // 1024),
                int(cinch["metadata_bytes"]) // 1024, cpu, wall))
        c.check(rss <= RSS_1TIB_MAX_KIB, "1 TiB: RSS with %d items <= %s" %
                (ITEMS_1TIB, mib(RSS_1TIB_MAX_KIB)), "RSS %s" % mib(rss))
        c.check(int(cinch["metadata_bytes"]) <= 64 * 1024,
                "1 TiB: the segment table is charged for the segments in use only",
                "metadata_bytes %s" % cinch["metadata_bytes"])
        c.check(server.alive(), "1 TiB: server still running", server.log()[-2000:])


def main(args):
    harness.skip_unless_cinch(args, "-m range and RSS (cinch-only)")
    c = harness.Checker(args.verbose)
    one_mib(c, args)
    refused(c, args, ["-m", "1", "-I", "1m"], "-m 1 -I 1m", "half of the memory limit")
    two_mib(c, args)
    one_tib(c, args)
    refused(c, args, ["-m", "1048577"], "-m 1048577", "1048576")
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__))
