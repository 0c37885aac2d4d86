#!/usr/bin/env python3
"""Warm restart with -e FILE (docs/restart-format.md):

  * items written, SIGTERM (and SIGUSR1), restart with the same -e: every item is back with the
    same value, flags and CAS (gets), exit status 0, and the log says what was saved and loaded;
  * items that expire while the server is down are gone;
  * with a file tier (-o ext_path) holding most items, SIGTERM and a restart with the same -e and
    ext_path bring back the items on file too, exact;
  * a file that is not a memory file is refused (cinchd does not start, the file is untouched);
  * kill -9 at random moments while a client writes, or while the server saves, 5 rounds: the
    server starts every round, says in its log what it loaded or why not, and every value it
    serves is one that was written last under its key (values carry their key, a version and
    a digest: 0 corrupt, torn or stale values).

cinchd only (memcached's -e needs a tmpfs and restarts empty after kill -9; bench/restart.py
compares the two)."""

import hashlib
import os
import random
import re
import signal
import tempfile
import threading
import time

import harness

ARGS = ["-m", "64", "-t", "2"]
EXIT_WITHIN = 10.0


def make_value(key, version, size):
    """A self-verifying value: key, version, size, then a digest-derived filler."""
    head = b"%s|%d|%d|" % (key, version, size)
    seed = hashlib.sha256(head).digest()
    body = (seed * (size // len(seed) + 1))[:max(0, size - len(head))]
    return head + body


def parse_value(key, value):
    """The version a value carries, or None if it is not a whole, intact value of `key`."""
    parts = value.split(b"|", 3)
    if len(parts) != 4 or parts[0] != key:
        return None
    try:
        version, size = int(parts[1]), int(parts[2])
    except ValueError:
        return None
    if len(value) != max(size, len(b"|".join(parts[:3]) + b"|")) or \
            value != make_value(key, version, size):
        return None
    return version


def gets_many(conn, keys):
    """{key: (flags, cas, value)} for the keys present, by one `gets` per 100 keys."""
    out = {}
    for i in range(0, len(keys), 100):
        conn.send(b"gets " + b" ".join(keys[i:i + 100]) + b"\r\n")
        while True:
            line = conn.read_line()
            if line == b"END\r\n":
                break
            parts = line.split()
            if len(parts) != 5 or parts[0] != b"VALUE":
                raise ValueError("unexpected reply to gets: %r" % line[:200])
            value = conn.read_exact(int(parts[3]) + 2)[:-2]
            out[parts[1]] = (int(parts[2]), int(parts[4]), value)
    return out


def wait_for_log(server, pattern, timeout=10.0):
    """The first match of `pattern` in the server's log, waiting for it to appear."""
    end = time.monotonic() + timeout
    while True:
        m = re.search(pattern, server.log())
        if m or time.monotonic() > end:
            return m
        time.sleep(0.02)


def stop(server, sig):
    """Sends `sig` and waits for the exit; returns the exit status (None: did not exit)."""
    server.proc.send_signal(sig)
    code = harness.wait_exit(server.proc, EXIT_WITHIN)
    log = server.log()
    server.stop()
    return code, log


def check_round_trip(c, args, path, sig):
    name = signal.Signals(sig).name
    if os.path.exists(path):
        os.unlink(path)
    rng = random.Random(sig)
    keys = [b"rt:%d:%s" % (i, b"x" * (i % 40)) for i in range(3000)]
    refused = []
    with harness.Server(args.server, ARGS + ["-e", path]) as server:
        c.check(wait_for_log(server, r"memory file .*: no file: starting empty"),
                "%s: the log says the file is not there yet" % name, server.log()[-500:])
        with server.conn() as conn:
            for i, key in enumerate(keys):
                # Mostly small values, some beyond an eighth of a segment (out of line).
                size = rng.choice([10, 100, 1000, 5000]) if i % 50 else rng.randint(150000, 400000)
                flags = rng.getrandbits(32) if i % 3 == 0 else 0
                value = make_value(key, 1, size)
                if conn.set(key, value, flags) != b"STORED":
                    refused.append(key)

            # Items that expire while the server is down: absolute times 2 s ahead.
            expires_at = int(time.time()) + 2
            for i in range(200):
                conn.set(b"short:%d" % i, b"gone", 0, expires_at)
            before = gets_many(conn, keys)
        c.equal(refused, [], "%s: every set stored" % name)
        c.equal(len(before), len(keys), "%s: every item readable before the restart" % name)
        code, log = stop(server, sig)
        c.equal(code, 0, "%s: exit status" % name)
        m = re.search(r"saved (\d+) items", log)
        c.check(m and int(m.group(1)) >= len(keys), "%s: the log says what was saved" % name,
                log[-500:])
    while time.time() <= expires_at + 1:  # the clock must pass the expiry before the restart
        time.sleep(0.1)
    with harness.Server(args.server, ARGS + ["-e", path]) as server:
        m = wait_for_log(server, r"memory file .*: loaded (\d+) items")
        c.check(m is not None, "%s: the log says what was loaded" % name, server.log()[-500:])
        if m:
            c.equal(int(m.group(1)), len(keys), "%s: items loaded (the expired ones not)" % name)
        with server.conn() as conn:
            after = gets_many(conn, keys)
            c.equal(len(after), len(keys), "%s: every item is back" % name)
            wrong = [k for k in keys if after.get(k) != before[k]]
            c.check(not wrong, "%s: same value, flags and CAS for every item" % name,
                    "%d differ, e.g. %r" % (len(wrong), wrong[:3]))
            gone = [i for i in range(200) if conn.get(b"short:%d" % i) is not None]
            c.check(not gone, "%s: items that expired while down are gone" % name,
                    "%d still there" % len(gone))
            # New versions get CAS values of their own.
            conn.set(keys[0], b"new")
            new_cas = gets_many(conn, [keys[0]])[keys[0]][1]
            c.check(new_cas not in {v[1] for v in before.values()},
                    "%s: a new version gets a CAS value no restored item has" % name)
        # A second start without a save in between finds the file consumed (stale).
        server.stop(signal.SIGKILL)
    with harness.Server(args.server, ARGS + ["-e", path]) as server:
        c.check(wait_for_log(server, r"loaded once already.*starting empty"),
                "after kill -9: the stale file is not loaded, and the log says so",
                server.log()[-500:])
        with server.conn() as conn:
            c.equal(conn.get(keys[1]), None, "after kill -9: the store is empty")


def check_not_a_memory_file(c, args, path):
    with open(path, "wb") as f:
        f.write(b"precious data, not a cinch memory file\n" * 10)
    before = open(path, "rb").read()
    server = harness.Server(args.server, ARGS + ["-e", path])
    try:
        server.start()
        c.check(False, "a file that is not a memory file: cinchd refuses to start")
    except harness.ServerError as e:
        c.check("not a cinch memory file" in str(e),
                "a file that is not a memory file: refused with a clear message", str(e)[-500:])
    finally:
        server.stop()
    c.check(open(path, "rb").read() == before, "a file that is not a memory file is untouched")
    os.unlink(path)


class Writer:
    """A client writing new versions of keys as fast as the server takes them, on a thread,
    until the connection breaks, stop() is called or it has sent `limit` sets (if given).
    `acked[key]` is the last version the server answered STORED to, `inflight[key]` one sent
    and not answered yet."""

    def __init__(self, port, rng, first, limit=None):
        self.port, self.rng, self.next = port, rng, first
        self.limit = limit
        self.acked, self.inflight = {}, {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn = harness.Conn(self.port, timeout=5)
        except OSError:
            return
        try:
            sent = 0
            while not self._stop.is_set() and (self.limit is None or sent < self.limit):
                sent += 20
                batch = []
                for _ in range(20):
                    key = b"k9:%d" % self.rng.randrange(5000)
                    self.next += 1
                    size = self.rng.choice([20, 200, 2000]) if self.rng.random() < 0.98 \
                        else self.rng.randint(150000, 300000)
                    batch.append((key, self.next, make_value(key, self.next, size)))
                for key, version, _ in batch:
                    self.inflight.setdefault(key, set()).add(version)
                conn.send(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v)
                                   for k, _, v in batch))
                for key, version, _ in batch:
                    if conn.read_line() != b"STORED\r\n":
                        return
                    self.acked[key] = version
                    self.inflight[key].discard(version)
        except (harness.Closed, harness.Timeout, OSError):
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        self.thread.join(10)


def check_kill_rounds(c, args, path):
    """5 rounds of kill -9; `latest` holds, per key, the versions a server may serve."""
    if os.path.exists(path):
        os.unlink(path)
    rng = random.Random(1313)
    latest = {}  # key -> set of versions that may be its value now
    version = 0
    must_have = None  # after a clean stop: the keys the next start must serve
    save_seconds = 0.05
    # Each round ends one way: kill -9 while a client writes, or SIGTERM then kill -9 a
    # moment later (while the server saves, if the moment is right), or a clean SIGTERM.
    endings = ["term", "term+kill", "kill", "term+kill", "term+kill", "term"]
    for rnd, ending in enumerate(endings):
        server = harness.Server(args.server, ARGS + ["-e", path])
        try:
            server.start()
        except harness.ServerError as e:
            c.check(False, "round %d: the server starts" % rnd, str(e)[-800:])
            return
        try:
            line = wait_for_log(server, r"memory file [^\n]*")
            c.check(line is not None, "round %d: the log says what was loaded or why not" % rnd,
                    server.log()[-500:])
            if args.verbose and line:
                print("round %d (%s): %s" % (rnd, endings[rnd - 1] if rnd else "-", line.group(0)))
            with server.conn() as conn:
                found = gets_many(conn, sorted(latest))
            bad = []
            for key, (_, _, value) in found.items():
                v = parse_value(key, value)
                if v is None or v not in latest[key]:
                    bad.append((key, v, sorted(latest[key])[-3:]))
            c.check(not bad, "round %d: %d values served, 0 corrupt or stale" % (rnd, len(found)),
                    "%d bad, e.g. %r" % (len(bad), bad[:3]))
            if must_have is not None:
                missing = must_have - set(found)
                c.check(not missing, "round %d: after a clean stop every key is back" % rnd,
                        "%d missing" % len(missing))
            # Before a clean stop, whose keys the next round checks, no more than the store
            # holds without evicting (under ASan -m 64 leaves it 34 MiB, and 20 sets average
            # 100 KiB); the others write until the end of the round.
            writer = Writer(server.port, rng, version, 2000 if ending == "term" else None)
            deadline = time.monotonic() + 10
            while len(writer.acked) < 300 and writer.thread.is_alive() and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.3))  # a random moment in the middle of the writes
            if ending == "kill":
                server.proc.send_signal(signal.SIGKILL)
                writer.stop()
            else:
                writer.stop()
                server.proc.send_signal(signal.SIGTERM)
                if ending == "term+kill":
                    wait_for_log(server, r"stopping, then saving")
                    # A random moment of the save (as long as the last one took).
                    time.sleep(rng.uniform(0, save_seconds))
                    server.proc.send_signal(signal.SIGKILL)
            code = harness.wait_exit(server.proc, EXIT_WITHIN)
            if ending == "term":
                c.equal(code, 0, "round %d: SIGTERM exit status" % rnd)
                m = re.search(r"saved \d+ items .* in ([0-9.]+) s", server.log())
                save_seconds = float(m.group(1)) if m else save_seconds
            version = writer.next
            for key, vs in writer.inflight.items():
                latest[key] = set(vs) | ({writer.acked[key]} if key in writer.acked else set())
            must_have = set(found) | set(writer.acked) if ending == "term" else None
        finally:
            server.stop()


def check_with_tier(c, args, tmp):
    """Most items on the file tier: a save reads them back from the file, a load puts what
    memory cannot hold on the tier again (docs/restart-format.md)."""
    path = os.path.join(tmp, "memory-tier")
    limit = "48" if os.environ.get("CINCH_SANITIZE") else "24"
    tier_args = ["-m", limit, "-t", "2", "-o", "ext_path=%s:96m" % os.path.join(tmp, "tier"),
                 "-e", path]
    rng = random.Random(7)
    keys = [b"tier:%d" % i for i in range(3000)]
    with harness.Server(args.server, tier_args) as server:
        with server.conn(timeout=30) as conn:
            for i, key in enumerate(keys):
                conn.set(key, make_value(key, 1, rng.randint(8000, 24000)), i)
            before = gets_many(conn, keys)
            st = conn.stats()
            on_file = int(st.get("tier_items", "0"))
            held = int(st.get("curr_items", "0"))
        # The tier keeps at least 95 % here (tests/integration/file_tier.py); the restart must
        # bring back every item that was there.
        c.check(len(before) >= len(keys) * 95 // 100, "tier: items readable before the restart",
                "%d of %d" % (len(before), len(keys)))
        c.check(on_file > len(keys) // 2, "tier: most items are on the file tier before the save",
                "tier_items %d of %d" % (on_file, len(keys)))
        code, log = stop(server, signal.SIGTERM)
        c.equal(code, 0, "tier: exit status")
    with harness.Server(args.server, tier_args) as server:
        m = wait_for_log(server, r"memory file .*: loaded (\d+) items")
        c.check(m is not None, "tier: the log says what was loaded", server.log()[-500:])
        # Before anything is read: tells a save or load that left items out from items lost
        # while serving after the restart.
        if m:
            c.equal(int(m.group(1)), held,
                    "tier: the load brought back every item held at the save")
        with server.conn(timeout=30) as conn:
            on_file = int(conn.stats().get("tier_items", "0"))
            after = gets_many(conn, keys)
            st = conn.stats()
        c.check(on_file > 0, "tier: the load put items on the file tier again",
                "tier_items %d" % on_file)
        wrong = [k for k in before if after.get(k) != before[k]]
        missing = [k for k in wrong if k not in after]
        cas_only = [k for k in wrong if k in after and after[k][0] == before[k][0] and
                    after[k][2] == before[k][2]]
        c.check(not wrong, "tier: every item back with the same value, flags and CAS",
                "%d of %d differ or are missing (%d missing, %d with only another CAS), e.g. "
                "%r ... %r; %s; evictions %s, tier_evictions %s, tier_io_errors %s, "
                "tier_promotions %s, tier_sync_reads %s" %
                (len(wrong), len(before), len(missing), len(cas_only), wrong[:3], wrong[-1:],
                 m.group(0) if m else "", st.get("evictions"), st.get("tier_evictions"),
                 st.get("tier_io_errors"), st.get("tier_promotions"), st.get("tier_sync_reads")))


def main(args):
    if harness.skip_unless_cinch(args, "cinchd's -e keeps items across kill -9 safely"):
        return harness.SKIP
    c = harness.Checker(args.verbose)
    with tempfile.TemporaryDirectory(prefix="cinch-restart-") as tmp:
        path = os.path.join(tmp, "memory")
        check_round_trip(c, args, path, signal.SIGTERM)
        check_round_trip(c, args, path, signal.SIGUSR1)
        check_with_tier(c, args, tmp)
        check_not_a_memory_file(c, args, path)
        check_kill_rounds(c, args, path)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=120)
