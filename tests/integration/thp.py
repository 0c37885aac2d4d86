#!/usr/bin/env python3
"""cinchd's -m holds under every transparent huge page mode (cinch-specific, like
memory_limit.py: memcached's -m bounds item memory only, so this test skips there).

With THP `always` the kernel backs any 2 MiB-aligned stretch of anonymous memory with a huge page
at the first touch (and khugepaged collapses stretches with a single resident page), so a process
that charges pages as it touches them can hold twice what it charged. cinchd opts out for the whole
process (prctl PR_SET_THP_DISABLE) and the engine marks its own mappings MADV_NOHUGEPAGE.

  For each mode of /sys/kernel/mm/transparent_hugepage/enabled (always, madvise, never):
  start cinchd -m 64 -t 2, write 6x the limit over 8 connections (100 B .. 100 KiB values) while
  /proc/PID/smaps_rollup is sampled every 20 ms: max VmRSS <= 64 MiB, AnonHugePages stays 0,
  /proc/PID/status says THP_enabled: 0, keys read back hold the values written.

Setting the mode needs root and a writable sysfs file; the original value is written back after
each mode (in a finally block, also on failure or the test's deadline), so the window in which
other processes on the machine see a changed mode is one fill (a few seconds). ctest runs this
test alone (RUN_SERIAL). When the mode cannot be set, the test runs once under the current mode
and says so. /sys/kernel/mm/transparent_hugepage/defrag is reported, not changed: with its usual
`madvise`, `always` still hands out huge pages at fault time whenever free ones are at hand (before
the opt-out, this fill peaked at 123 MiB RSS, 118 MiB of it huge pages, on such a VM).
"""

import os
import random
import threading
import time

import harness
import memory_limit

THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"
THP_DEFRAG = "/sys/kernel/mm/transparent_hugepage/defrag"
MODES = ("always", "madvise", "never")
LIMIT_MIB = 64
LIMIT_KIB = LIMIT_MIB * 1024
WRITERS = 8
FILL_FACTOR = 6


def read_choice(path):
    """The bracketed choice of a sysfs selector such as "always [madvise] never", or None."""
    try:
        with open(path) as f:
            words = f.read().split()
    except OSError:
        return None
    chosen = [w[1:-1] for w in words if w.startswith("[") and w.endswith("]")]
    return chosen[0] if chosen else None


def write_choice(path, value):
    with open(path, "w") as f:
        f.write(value)


def can_set_mode(original):
    """True when this process may change THP_ENABLED: root, and writing it back succeeds."""
    if original is None or os.geteuid() != 0 or not os.access(THP_ENABLED, os.W_OK):
        return False
    try:
        write_choice(THP_ENABLED, original)
    except OSError:
        return False
    return True


def memory_kib(pid):
    """{"Rss": KiB, "AnonHugePages": KiB} from /proc/PID/smaps_rollup, or None if it is gone."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            text = f.read()
    except (OSError, TypeError):
        return None
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("Rss:", "AnonHugePages:"):
            out[parts[0][:-1]] = int(parts[1])
    return out if len(out) == 2 else None


def thp_enabled_field(pid):
    """The THP_enabled field of /proc/PID/status ("0" or "1"), or None where the kernel lacks it."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("THP_enabled:"):
                    return line.split()[1]
    except OSError:
        return None
    return None


def fill_and_check(c, args, label):
    """One server, filled well past -m under the THP mode now in force."""
    with harness.Server(args.server, ["-m", str(LIMIT_MIB), "-t", "2"]) as server:
        field = thp_enabled_field(server.pid)
        if field is None:
            c.skip("%s: THP_enabled in /proc/PID/status" % label, "the kernel does not show it")
        else:
            c.equal(field, "0", "%s: cinchd disabled THP for itself (THP_enabled)" % label)
        budget = FILL_FACTOR * LIMIT_MIB * (1 << 20) // WRITERS
        written, errors, lock = [], [], threading.Lock()
        start = time.monotonic()
        with harness.MemorySampler(server.pid, read=memory_kib) as s:
            threads = [threading.Thread(target=memory_limit.writer,
                                        args=(server.port, i, budget, written, errors, lock),
                                        daemon=True)
                       for i in range(WRITERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(40)
        c.note("%s: wrote %d MiB in %d sets in %.1f s; max RSS %s, max AnonHugePages %s "
               "(%d samples)" % (label, FILL_FACTOR * LIMIT_MIB, len(written),
                                 time.monotonic() - start, memory_limit.mib(s.max("Rss")),
                                 memory_limit.mib(s.max("AnonHugePages")), s.samples))
        c.check(not any(t.is_alive() for t in threads), "%s: writers finished" % label)
        c.check(not errors, "%s: every set answered STORED" % label, "\n     ".join(errors[:10]))
        c.check(s.samples > 0, "%s: RSS sampled" % label)
        c.check(s.max("Rss") <= LIMIT_KIB, "%s: max RSS <= %d MiB" % (label, LIMIT_MIB),
                "max RSS %s" % memory_limit.mib(s.max("Rss")))
        c.equal(s.max("AnonHugePages"), 0, "%s: no anonymous huge pages (KiB)" % label)
        check_sample(c, server, written, label)
        c.check(server.alive(), "%s: server still running" % label, server.log()[-2000:])


def check_sample(c, server, written, label):
    wrong, hits = [], 0
    with server.conn(timeout=10) as conn:
        for key, size in random.Random(3).sample(written, min(500, len(written))):
            got = conn.get(key)
            if got is None:
                continue
            hits += 1
            if got != memory_limit.value_for(key, size):
                wrong.append("%s: %d bytes, want %d" % (key.decode(), len(got), size))
    c.check(hits > 0 and not wrong, "%s: keys read back hold the values written" % label,
            "%d present; %s" % (hits, "; ".join(wrong[:5])))


def main(args):
    harness.skip_unless_cinch(args, "hard memory limit under THP (cinch-only)")
    c = harness.Checker(args.verbose)
    original = read_choice(THP_ENABLED)
    c.note("THP enabled: %s, defrag: %s" % (original, read_choice(THP_DEFRAG)))
    if not can_set_mode(original):
        why = "the kernel has no THP" if original is None else "not root or sysfs read-only"
        c.note("cannot set the THP mode (%s): running under the current mode only" % why)
        fill_and_check(c, args, "THP %s (current)" % original)
        return c.finish()
    try:
        for mode in MODES:
            try:
                write_choice(THP_ENABLED, mode)
                c.equal(read_choice(THP_ENABLED), mode, "THP mode set to %s" % mode)
                fill_and_check(c, args, "THP %s" % mode)
            finally:
                write_choice(THP_ENABLED, original)
    finally:  # again: the test's deadline may have interrupted the inner restore
        write_choice(THP_ENABLED, original)
    c.equal(read_choice(THP_ENABLED), original, "THP mode restored to %s" % original)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=150)
