#!/usr/bin/env python3
"""The file tier (-o ext_path=PATH:SIZE, memcached's extstore syntax) end to end, at CI sizes
(cinch-specific: memcached's extstore keeps a small part of what this writes, so it skips there).

  fill:     -m 24 -o ext_path=DIR/tier:80m; one pipelining client writes ~60 MB of
            self-verifying values (200 B .. 100 KiB, log-uniform; the value, its length and the
            flags follow from the key), then two thirds of them again, while VmRSS is sampled
            every 20 ms.
  read:     every key read back (pymemcache, batches of gets): >= 95 % present, 0 corrupt
            (wrong bytes, length or flags); RSS <= -m throughout.
  cas:      the CAS value `gets` gave right after the write is the one it gives after the item
            went to the file and came back; `cas` with it stores, a stale one answers EXISTS.
  stats:    tier_writes, tier_reads, tier_promotions, tier_compactions, tier_waits moved;
            extstore names shown.
  flood:    while one connection floods sets, another's gets of file-resident keys are all
            answered, correctly; the server keeps running.
  errors:   an ext_path in a missing directory, a size without a unit, a file smaller than one
            segment, a file whose segments' metadata -m cannot hold: cinchd exits non-zero
            naming the option.
"""

import math
import os
import random
import subprocess
import tempfile
import threading
import time
import zlib

import harness

SANITIZED = bool(os.environ.get("CINCH_SANITIZE"))
# Under sanitizers the process's own share of -m is larger (shadow memory): a larger -m leaves the
# store the same 1 MiB segments (at 512 KiB, values over 64 KiB would be jumbo items, which the
# tier does not take: evicted rather than demoted). RSS is not checked there.
LIMIT_MIB = 48 if SANITIZED else 24
TIER_MIB = 80
TOTAL_BYTES = 60 * 1000 * 1000
MIN_SIZE, MAX_SIZE = 200, 100 * 1024
BATCH = 32
BLOB = random.Random(13).randbytes(2 * MAX_SIZE)


def key_of(i, size):
    return b"ft:%d:%d" % (i, size)


def value_for(key):
    """The bytes `key` must hold: its length is in the key, its content a window of BLOB."""
    size = int(key.split(b":")[2])
    off = zlib.crc32(key) % (len(BLOB) - size)
    return BLOB[off:off + size]


def flags_for(key):
    return zlib.crc32(key[::-1])


def make_keys(count_bytes, seed):
    rng = random.Random(seed)
    keys, total = [], 0
    while total < count_bytes:
        size = int(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))
        keys.append(key_of(len(keys), size))
        total += size
    return keys


def write_all(conn, keys):
    """Pipelines sets in batches; returns how many were STORED."""
    stored = 0
    for b in range(0, len(keys), BATCH):
        batch = keys[b:b + BATCH]
        conn.send(b"".join(b"set %s %d 0 %d\r\n%s\r\n" % (k, flags_for(k), len(value_for(k)),
                                                         value_for(k)) for k in batch))
        for _ in batch:
            stored += conn.read_line(timeout=30) == b"STORED\r\n"
    return stored


def read_all(port, keys):
    """(present, corrupt) over every key, through pymemcache."""
    from pymemcache.client.base import Client
    client = Client(("127.0.0.1", port), timeout=30, connect_timeout=5)
    present = corrupt = 0
    try:
        for b in range(0, len(keys), BATCH):
            batch = keys[b:b + BATCH]
            got = client.get_many([k.decode() for k in batch])
            for k in batch:
                v = got.get(k.decode())
                if v is None:
                    continue
                present += 1
                corrupt += v != value_for(k)
    finally:
        client.close()
    return present, corrupt


def gets(conn, key):
    """(flags, value, cas) or None."""
    conn.send(b"gets %s\r\n" % key)
    line = conn.read_line(timeout=30)
    if line == b"END\r\n":
        return None
    parts = line.split()
    value = conn.read_exact(int(parts[3]) + 2, timeout=30)[:-2]
    conn.read_line(timeout=30)  # END
    return int(parts[2]), value, int(parts[4])


def check_flags(c, conn, keys):
    bad = 0
    for k in keys:
        r = gets(conn, k)
        if r is not None and (r[0] != flags_for(k) or r[1] != value_for(k)):
            bad += 1
    c.equal(bad, 0, "flags and values of %d keys read with gets" % len(keys))


def check_cas(c, conn, early):
    """`early`: key -> CAS from right after its write; the items have been to the file since."""
    same = changed = missing = 0
    for k, cas in early.items():
        r = gets(conn, k)
        if r is None:
            missing += 1
        elif r[2] == cas:
            same += 1
        else:
            changed += 1
    c.equal(changed, 0, "CAS unchanged through the file tier (%d same, %d evicted)" %
            (same, missing))
    k = next((k for k in early if gets(conn, k) is not None), None)
    if not c.check(k is not None, "a key to cas"):
        return
    cas = gets(conn, k)[2]
    v = value_for(k)
    c.equal(conn.call(b"cas %s %d 0 %d %d\r\n%s\r\n" % (k, flags_for(k), len(v), cas + 1, v)),
            b"EXISTS\r\n", "cas with a stale CAS value")
    c.equal(conn.call(b"cas %s %d 0 %d %d\r\n%s\r\n" % (k, flags_for(k), len(v), cas, v)),
            b"STORED\r\n", "cas with the CAS value gets gave")


def stat(conn, name):
    return int(conn.stats().get(name, "-1"))


def flood_and_read(c, server, keys):
    """One connection floods sets; another reads file-resident keys meanwhile."""
    stop = threading.Event()
    flooded = [0]
    errors = []

    def flood():
        try:
            w = server.conn(timeout=30)
            rng = random.Random(7)
            end = time.monotonic() + 20
            i = 0
            while not stop.is_set() and time.monotonic() < end and i < 20000:
                batch = [b"flood:%d:%d" % (i + j, rng.randint(MIN_SIZE, 20000)) for j in range(16)]
                i += 16
                w.send(b"".join(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(value_for(k)),
                                                                      value_for(k)) for k in batch))
                flooded[0] = i
            w.call(b"mn\r\n")  # every set answered (processed) before the writer stops
            w.close()
        except Exception as e:  # reported below, the checks run on the main thread
            errors.append(repr(e))

    writer = threading.Thread(target=flood, daemon=True)
    r = server.conn(timeout=30)
    before = stat(r, "tier_waits")
    writer.start()
    answered = corrupt = present = 0
    sample = keys[:600]
    for k in sample:
        if not writer.is_alive():
            break
        v = r.get(k, timeout=30)  # raises (fails the test) if not answered
        answered += 1
        if v is not None:
            present += 1
            corrupt += v != value_for(k)
    stop.set()
    writer.join(60)
    c.check(not errors, "the flooding writer ran", "; ".join(errors))
    c.check(answered > 0, "gets answered while another connection floods sets (%d answered, "
            "%d present, %d sets flooded meanwhile)" % (answered, present, flooded[0]))
    c.equal(corrupt, 0, "corrupt values read during the flood")
    c.check(stat(r, "tier_waits") > before, "reads during the flood waited for the tier's I/O "
            "threads (tier_waits)")
    r.close()


def check_start_errors(c, server_path, tmp):
    for bad, what in (("%s/missing/dir/tier:64m" % tmp, "cannot create"),
                      ("%s/tier2:64" % tmp, "ext_path"),
                      ("%s/tier3:512k" % tmp, "less than one segment"),
                      # ~96 B per 1 MiB file segment of memory, charged at start: 48 MiB of -m 64
                      ("%s/tier4:512g" % tmp, "too small for the file tier")):
        argv = [server_path, "-p", "0", "-U", "0", "-m", "64", "-o", "ext_path=" + bad]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        try:
            p = subprocess.run(argv, capture_output=True, timeout=20)
        except subprocess.TimeoutExpired:
            c.check(False, "cinchd refuses -o ext_path=%s" % bad, "it started")
            continue
        err = p.stderr.decode("utf-8", "replace")
        c.check(p.returncode != 0 and what in err, "cinchd refuses -o ext_path=%s" % bad,
                "exit %d: %s" % (p.returncode, err.strip()))


def main(args):
    harness.skip_unless_cinch(args, "file tier (cinch keeps what extstore drops)")
    c = harness.Checker(args.verbose)
    with tempfile.TemporaryDirectory(prefix="cinch-tier-") as tmp:
        check_start_errors(c, args.server, tmp)
        flags = ["-m", str(LIMIT_MIB), "-t", "2", "-c", "64",
                 "-o", "ext_path=%s/tier:%dm" % (tmp, TIER_MIB)]
        with harness.Server(args.server, flags) as server:
            keys = make_keys(TOTAL_BYTES, seed=1)
            conn = server.conn(timeout=30)
            early = {}
            with harness.MemorySampler(server.pid) as rss:
                t0 = time.monotonic()
                # The first keys' CAS values, taken while they are in memory.
                stored = write_all(conn, keys[:64])
                for k in keys[:64]:
                    r = gets(conn, k)
                    if r is not None:
                        early[k] = r[2]
                stored += write_all(conn, keys[64:])
                written = time.monotonic() - t0
                # Two thirds written again (same values): their old copies in the file are dead
                # bytes, which the tier compacts away.
                again = keys[64:2 * len(keys) // 3]
                c.equal(write_all(conn, again), len(again), "every rewrite STORED")
                st = conn.stats()
                c.equal(stored, len(keys), "every set STORED")
                c.check(int(st.get("tier_writes", 0)) > 0, "segments written to the file "
                        "(tier_writes %s, tier_items %s, evictions %s)" %
                        (st.get("tier_writes"), st.get("tier_items"), st.get("evictions")))
                for name in ("extstore_limit_maxbytes", "extstore_bytes_written",
                             "extstore_objects_used", "recache_from_extstore"):
                    c.check(name in st, "stats shows %s" % name)
                c.equal(int(st.get("extstore_limit_maxbytes", 0)) > 0, True,
                        "the tier's capacity is reported")
                present, corrupt = read_all(server.port, keys)
                c.note("%d keys, %.1f MB written in %.1f s; read back %d present (%.1f %%)" %
                       (len(keys), TOTAL_BYTES / 1e6, written, present,
                        100.0 * present / len(keys)))
                c.check(present >= 0.95 * len(keys), ">= 95 %% of the keys kept (%d of %d)" %
                        (present, len(keys)))
                c.equal(corrupt, 0, "corrupt values")
                check_flags(c, conn, keys[64:400])
                check_cas(c, conn, early)
                st = conn.stats()
                for name in ("tier_reads", "tier_promotions", "tier_waits"):
                    c.check(int(st.get(name, 0)) > 0, "%s moved (%s)" % (name, st.get(name)))
                # Under sanitizers the larger -m leaves the file room enough to need none.
                if SANITIZED:
                    c.skip("tier_compactions moved", "a larger -m under sanitizers")
                else:
                    c.check(int(st.get("tier_compactions", 0)) > 0,
                            "tier_compactions moved (%s)" % st.get("tier_compactions"))
                c.note("tier: %s items on file, %s promotions, %s waits, %s sync reads; "
                       "%s evictions (%s from the file), %s file compactions" %
                       (st.get("tier_items"), st.get("tier_promotions"), st.get("tier_waits"),
                        st.get("tier_sync_reads"), st.get("evictions"), st.get("tier_evictions"),
                        st.get("tier_compactions")))
                flood_and_read(c, server, keys)
            conn.close()
            if SANITIZED:
                c.skip("RSS within -m", "sanitizer shadow memory")
            else:
                c.check(rss.max_kib <= LIMIT_MIB * 1024, "RSS within -m throughout",
                        "max VmRSS %d KiB > %d KiB" % (rss.max_kib, LIMIT_MIB * 1024))
                c.note("max VmRSS %.1f MiB of %d (%d samples)" %
                       (rss.max_kib / 1024, LIMIT_MIB, rss.samples))
            c.check(server.alive(), "the server is still running")
            c.check(harness.Conn(server.port).call(b"version\r\n").startswith(b"VERSION"),
                    "and answers")
            # The I/O threads stop after the workers; sanitizer builds report here too.
            code = server.stop()
            c.equal(code, 0, "exit status on SIGTERM")
            if code != 0:
                c.note(server.log()[-3000:])
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=58)
