#!/usr/bin/env python3
"""cinchd's -m is a hard limit on the process's resident memory (cinch-specific: memcached's -m
bounds item memory only, so this test skips there unless --force).

  fill:        -m 64 -t 2; 8 connections write mixed sizes (100 B .. 100 KiB, log-uniform) for
               10x the limit while VmRSS is sampled every 20 ms: max RSS <= 64 MiB; keys read
               back hold the value written (evicted ones may be missing).
  flush:       after flush_all, within 2 s RSS falls by at least half of what the data added
               over the idle server's RSS (values reported).
  slow reader: one client pipelines 20 MB of `get` for a 100 KiB item without reading: RSS
               stays <= 64 MiB and another client is still served promptly.
  no-evict:    -M: sets eventually get "SERVER_ERROR out of memory storing object", RSS stays
               <= 64 MiB, nothing stored is lost and the server keeps serving.
"""

import math
import random
import threading
import time
import zlib

import harness

LIMIT_MIB = 64
LIMIT_KIB = LIMIT_MIB * 1024
WRITERS = 8
FILL_FACTOR = 10
MIN_SIZE, MAX_SIZE = 100, 100 * 1024
BATCH = 16
OOM = b"SERVER_ERROR out of memory storing object\r\n"

BLOB = random.Random(1).randbytes(4 * MAX_SIZE)


def value_for(key, size):
    """Deterministic bytes for `key`: a window of BLOB chosen by the key's CRC."""
    off = zlib.crc32(key) % (len(BLOB) - size)
    return BLOB[off:off + size]


def log_uniform(rng):
    return int(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))


def mib(kib):
    return "%.1f MiB" % (kib / 1024.0)


# ----------------------------------------------------------------------------- fill


def writer(port, index, budget, written, errors, lock):
    rng = random.Random(1000 + index)
    conn = harness.Conn(port, timeout=20)
    sent, n, mine = 0, 0, []
    try:
        while sent < budget:
            batch, keys = [], []
            for _ in range(BATCH):
                key = b"w%d:%d" % (index, n)
                n += 1
                size = log_uniform(rng)
                batch.append(b"set %s 0 0 %d\r\n%s\r\n" % (key, size, value_for(key, size)))
                keys.append((key, size))
                sent += size
            mine.extend(keys)
            conn.send(b"".join(batch))
            for key, size in keys:
                reply = conn.read_line()
                if reply != b"STORED\r\n":
                    with lock:
                        errors.append("set %s (%d B): %r" % (key.decode(), size, reply))
                    if len(errors) > 20:
                        return
    except Exception as e:  # connection trouble is a failure of this writer
        with lock:
            errors.append("writer %d: %s: %s" % (index, type(e).__name__, e))
    finally:
        conn.close()
        with lock:
            written.extend(mine)


def fill(c, server):
    budget = FILL_FACTOR * LIMIT_MIB * (1 << 20) // WRITERS
    written, errors, lock = [], [], threading.Lock()
    start = time.monotonic()
    with harness.MemorySampler(server.pid) as rss:
        threads = [threading.Thread(target=writer, args=(server.port, i, budget, written,
                                                         errors, lock), daemon=True)
                   for i in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
    took = time.monotonic() - start
    c.check(not any(t.is_alive() for t in threads), "fill: writers finished")
    c.check(not errors, "fill: every set answered STORED", "\n     ".join(errors[:10]))
    c.note("fill: wrote %d MiB in %d sets over %d connections in %.1f s; max RSS %s "
           "(%d samples)" % (FILL_FACTOR * LIMIT_MIB, len(written), WRITERS, took,
                              mib(rss.max_kib), rss.samples))
    c.check(rss.max_kib <= LIMIT_KIB, "fill: max RSS <= %d MiB" % LIMIT_MIB,
            "max RSS %s" % mib(rss.max_kib))
    return written


def verify_sample(c, server, written):
    rng = random.Random(7)
    sample = rng.sample(written, min(2000, len(written)))
    recent = written[-200:]
    hits, wrong = 0, []
    with server.conn(timeout=10) as conn:
        for key, size in sample + recent:
            got = conn.get(key)
            if got is None:
                continue
            hits += 1
            if got != value_for(key, size):
                wrong.append("%s: %d bytes, want %d" % (key.decode(), len(got), size))
    c.check(not wrong, "fill: keys read back hold the values written", "; ".join(wrong[:5]))
    c.check(hits > 0, "fill: some written keys are still present")
    c.note("fill: %d of %d sampled keys present" % (hits, len(sample) + len(recent)))


# ----------------------------------------------------------------------------- flush


def flush(c, server, idle_kib):
    before = server.rss_kib()
    with server.conn() as conn:
        c.equal(conn.call(b"flush_all\r\n"), b"OK\r\n", "flush: flush_all")
    want = before - max(1, (before - idle_kib) // 2)
    after = before
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        after = server.rss_kib()
        if after <= want:
            break
        time.sleep(0.05)
    c.note("flush: RSS idle %s, before flush_all %s, after %s" %
           (mib(idle_kib), mib(before), mib(after)))
    c.check(after <= want, "flush: RSS falls within 2 s (to <= %s)" % mib(want),
            "RSS %s -> %s" % (mib(before), mib(after)))


# ----------------------------------------------------------------------------- slow reader


def slow_reader(c, server):
    big = value_for(b"slow:big", 100 * 1024)
    with server.conn() as conn:
        c.equal(conn.set(b"slow:big", big), b"STORED", "slow reader: set 100 KiB item")
    flood = harness.UnreadFlood(server, b"get slow:big\r\n")
    with harness.MemorySampler(server.pid) as rss, flood:
        latencies, failures = harness.round_trips(
            server, 6.0, lambda i: (b"slow:other%d" % i, value_for(b"slow:other%d" % i, 1000)))
    c.note("slow reader: pipelined %.1f MB of gets (%d send stalls); other client %d round "
           "trips, slowest %.3f s; max RSS %s" % (flood.sent / 1e6, flood.stalls,
                                                  len(latencies), max(latencies or [0]),
                                                  mib(rss.max_kib)))
    c.check(not failures, "slow reader: other client served", "; ".join(failures[:5]))
    c.check(latencies and max(latencies) < 1.0, "slow reader: other client's round trips < 1 s",
            "slowest %.3f s" % max(latencies or [0]))
    c.check(rss.max_kib <= LIMIT_KIB, "slow reader: max RSS <= %d MiB" % LIMIT_MIB,
            "max RSS %s" % mib(rss.max_kib))
    with server.conn() as conn:
        c.check(conn.get(b"slow:big") == big, "slow reader: server healthy afterwards")


# ----------------------------------------------------------------------------- -M


def no_evict(c, args):
    with harness.Server(args.server, ["-m", str(LIMIT_MIB), "-t", "2", "-M"]) as server:
        stored, oom, other = [], 0, []
        limit_bytes = FILL_FACTOR * LIMIT_MIB * (1 << 20)
        size = 50 * 1024
        with harness.MemorySampler(server.pid) as rss, server.conn(timeout=20) as conn:
            n = 0
            while n * size < limit_bytes and oom < 20:
                keys = [b"M:%d" % (n + i) for i in range(BATCH)]
                n += BATCH
                conn.send(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, size, value_for(k, size))
                                   for k in keys))
                for k in keys:
                    reply = conn.read_line()
                    if reply == b"STORED\r\n":
                        stored.append(k)
                    elif reply == OOM:
                        oom += 1
                    else:
                        other.append("%s: %r" % (k.decode(), reply))
            c.note("-M: %d sets stored (%s), %d out-of-memory replies; max RSS %s" %
                   (len(stored), mib(len(stored) * size // 1024), oom, mib(rss.max_kib)))
            c.check(oom > 0, "-M: sets eventually answer %r" % OOM.strip().decode(),
                    "wrote %d MiB without one" % (n * size >> 20))
            c.check(not other, "-M: no other replies", "; ".join(other[:5]))
            c.check(rss.max_kib <= LIMIT_KIB, "-M: max RSS <= %d MiB" % LIMIT_MIB,
                    "max RSS %s" % mib(rss.max_kib))
            lost = [k for k in stored[::max(1, len(stored) // 300)]
                    if conn.get(k) != value_for(k, size)]
            c.check(not lost, "-M: stored items are kept (no eviction)",
                    "%d lost, e.g. %s" % (len(lost), lost[:3]))
            c.equal(conn.stats().get("evictions"), "0", "-M: stats evictions")
            reply = conn.set(b"M:small", b"x")
            c.check(reply in (b"STORED", OOM.strip()), "-M: a small set after out-of-memory",
                    "got %r" % reply)


def main(args):
    if not args.force:
        harness.skip_unless_cinch(args, "hard memory limit (cinch-only)")
    c = harness.Checker(args.verbose)
    with harness.Server(args.server, ["-m", str(LIMIT_MIB), "-t", "2"]) as server:
        time.sleep(0.2)
        idle = server.rss_kib()
        c.note("idle server RSS %s" % mib(idle))
        written = fill(c, server)
        verify_sample(c, server, written)
        flush(c, server, idle)
        slow_reader(c, server)
        c.check(server.alive(), "server still running", server.log()[-2000:])
    no_evict(c, args)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__, lambda p: p.add_argument(
        "--force", action="store_true", help="run even against memcached (to develop)")))
