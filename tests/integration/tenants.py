#!/usr/bin/env python3
"""Tenants (-Y FILE with `user:password:QUOTA` lines) through real binary-protocol clients.

  1. pylibmc (libmemcached) with binary=True and SASL username/password: set, get, delete,
     incr, multi-get as a tenant and as a default-keyspace user; a wrong password is an error;
     the same key in two tenants and in the default keyspace is three items; a tenant's
     flush_all leaves the others' items; a tenant's `stats reset` leaves the server's
     counters.
  2. python3-binary-memcached (bmemcached) with username and password: the same.
  3. `memcstat --binary --username --password` (Debian's libmemcached-tools has both): a
     tenant sees its own figures, a wrong password or none gets no statistics. (memcstat
     --binary without -Y is checked in binary.py.)
  4. Isolation at -m 64: tenant B stores a 5 MiB data set of verified values, tenant A (quota
     16 MiB) then writes 200 MiB of 1-100 kB values through pylibmc, and 48 MiB of 200-900 kB
     ones (each in a segment of its own). Afterwards B's data set is intact byte for byte,
     A's stats show limit_maxbytes = 16 MiB, bytes <= 16 MiB and evictions > 0, the
     process's peak RSS (VmHWM) stayed within -m; A never read any of B's keys; an
     unauthenticated client, text or binary, raw or through a client library, gets no value
     and no statistics.
  5. SIGHUP: raising and lowering A's quota shows in its stats (and lowering evicts down to
     it); removing B closes B's connection and flushes B's keyspace, so B re-added finds its
     keyspace empty, while A's items stay.
  6. Overcommit: three tenants with a 48 MiB quota each at -m 64, all writing at once: every
     set succeeds, peak RSS within -m, each tenant within its quota and their sum within -m,
     none squeezed out by the others; a quiet fourth tenant under its fair share keeps its
     5 MiB data set whole.
Under a sanitizer (CINCH_SANITIZE set) the RSS checks are off (shadow memory); every other
check stays. cinch-only: skips against memcached.
"""

import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import zlib

import harness
from binary import GET, SASL_AUTH, STAT, pkt, read_responses_n

MIB = 1 << 20
LIMIT_MIB = 64
QUOTA = 16 * MIB
SANITIZED = bool(os.environ.get("CINCH_SANITIZE"))
EVENT_TIMEOUT = 15.0
AUTH_ERROR = 0x20  # the binary protocol's "Authentication error"

USERS = b"alice:secret\nbob:pw\nta:pa:16\ntb:pb:16m\ntc:pc:8\n"
# Three noisy tenants and a quiet one: quotas of 208 MiB at -m 64. The quiet tenant's fair
# share is its quota scaled down by the overcommit: 64/208 of the store's segment memory (about
# 43 MiB at -m 64), some 13 MiB, which its 5 MiB (6 segments) leave well under.
OVERCOMMIT_USERS = b"t1:p1:48\nt2:p2:48\nt3:p3:48\nquiet:pq:64\n"
# A sanitizer's runtime makes the process larger at start, and the store smaller by as much
# (cinchd measures what it keeps for itself): the overcommit server gets release's figure.
SANITIZED_ARGS = ["-o", "process_reserve=12m"] if SANITIZED else []

# What tenant A writes at quota 16 MiB (200 MiB: 12.5x its quota, 3x the process's limit),
# what each overcommitted tenant writes (2x its quota; 4.5x -m together), and B's data set.
A_WRITES = 200 * MIB
OVERCOMMIT_WRITES = 96 * MIB
B_DATA = 5 * MIB
MIN_VALUE, MAX_VALUE = 1000, 100 * 1000
# Then A writes values too large for a segment's write head (over an eighth of a 1 MiB
# segment: each gets a jumbo segment of its own, recorded as A's).
LARGE_WRITES = 48 * MIB
MIN_LARGE, MAX_LARGE = 200 * 1000, 900 * 1000
BATCH = 32

BLOB = random.Random(14).randbytes(2 * MAX_LARGE)


def value_for(key, size):
    """Deterministic, incompressible bytes for `key` (str): a window of BLOB chosen by it."""
    off = zlib.crc32(key.encode()) % (len(BLOB) - size)
    return BLOB[off:off + size]


def mib(n_bytes):
    return "%.1f MiB" % (n_bytes / MIB)


def write(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)


def peak_rss(pid):
    """VmHWM (the kernel's peak resident set) of `pid` in bytes, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def check_rss(c, server, what):
    peak = peak_rss(server.pid)
    if SANITIZED:
        c.note("%s: peak RSS %s (not checked under a sanitizer)" % (what, mib(peak or 0)))
        return
    c.check(peak is not None and peak <= LIMIT_MIB * MIB,
            "%s: peak RSS (VmHWM) <= %d MiB" % (what, LIMIT_MIB), "VmHWM %s" % mib(peak or 0))
    c.note("%s: peak RSS %s" % (what, mib(peak or 0)))


# ----------------------------------------------------------------------------- clients


def pylibmc_client(server, user=None, password=None):
    import pylibmc
    return pylibmc.Client(["127.0.0.1:%d" % server.port], binary=True, username=user,
                          password=password, behaviors={"tcp_nodelay": True})


def bmemcached_client(server, user=None, password=None):
    import bmemcached
    return bmemcached.Client(("127.0.0.1:%d" % server.port,), user, password)


def stats_of(client):
    """pylibmc's get_stats() of the one server, as a dict of str -> str."""
    (_, stats), = client.get_stats()
    return {k if isinstance(k, str) else k.decode(): v.decode() if isinstance(v, bytes) else v
            for k, v in stats.items()}


def raises(op):
    """The exception op() raises, or None (and what it returned)."""
    try:
        return None, op()
    except Exception as e:  # the client library's own error types
        return e, None


def text_login(server, user, password):
    conn = server.conn(timeout=EVENT_TIMEOUT)
    data = user + b" " + password
    reply = conn.call(b"set auth 0 0 %d\r\n%s\r\n" % (len(data), data))
    return conn, reply


def check_pylibmc(c, server):
    import pylibmc
    ta, tb = pylibmc_client(server, "ta", "pa"), pylibmc_client(server, "tb", "pb")
    alice, bob = pylibmc_client(server, "alice", "secret"), pylibmc_client(server, "bob", "pw")
    for who, cl in (("tenant ta", ta), ("default user alice", alice)):
        c.check(cl.set("k", b"v1") and cl.get("k") == b"v1", "pylibmc SASL %s: set, get" % who)
        c.check(cl.set("n", 10) and cl.incr("n", 5) == 15 and cl.decr("n", 1) == 14,
                "pylibmc SASL %s: incr, decr" % who)
        c.check(cl.set_multi({"m%d" % i: b"x%d" % i for i in range(20)}) == [],
                "pylibmc SASL %s: set_multi" % who)
        c.equal(cl.get_multi(["m%d" % i for i in range(20)] + ["absent"]),
                {"m%d" % i: b"x%d" % i for i in range(20)}, "pylibmc SASL %s: get_multi" % who)
        c.check(cl.delete("k") and cl.get("k") is None, "pylibmc SASL %s: delete" % who)
    # The same key in two tenants and the default keyspace: three items.
    for cl, value in ((ta, b"A"), (tb, b"B"), (alice, b"D")):
        cl.set("same", value)
    c.equal([cl.get("same") for cl in (ta, tb, alice, bob)], [b"A", b"B", b"D", b"D"],
            "pylibmc: 'same' in ta, tb, alice, bob (bob shares alice's keyspace)")
    c.equal(tb.get_multi(["m%d" % i for i in range(20)] + ["n"]), {},
            "pylibmc: tb sees none of ta's keys")
    tb.delete("same")
    c.equal((ta.get("same"), alice.get("same")), (b"A", b"D"),
            "pylibmc: tb's delete leaves ta's and the default keyspace's item")
    tc = pylibmc_client(server, "tc", "pc")
    tc.set("same", b"C")
    tc.flush_all()
    c.equal((tc.get("same"), ta.get("same"), alice.get("same")), (None, b"A", b"D"),
            "pylibmc: tc's flush_all flushes only tc's keyspace")
    st = stats_of(ta)
    c.equal((st.get("limit_maxbytes"), st.get("curr_items")), (str(QUOTA), "22"),
            "pylibmc: ta's stats are its keyspace's (quota, 20 + n + same)")
    check_stats_reset(c, server)
    bad = pylibmc_client(server, "ta", "wrong")
    e, got = raises(lambda: bad.get("same"))
    c.check(isinstance(e, pylibmc.Error) and got is None,
            "pylibmc: a wrong password is an error", "raised %r, returned %r" % (e, got))
    e, _ = raises(lambda: bad.set("same", b"evil"))
    c.check(isinstance(e, pylibmc.Error), "pylibmc: a wrong password cannot set", repr(e))
    c.equal(ta.get("same"), b"A", "pylibmc: ta's item unchanged after the failed logins")
    for cl in (ta, tb, tc, alice, bob, bad):
        cl.disconnect_all()


def check_stats_reset(c, server):
    """A tenant's `stats reset` resets its own counters, not the server's."""
    alice, _ = text_login(server, b"alice", b"secret")
    ta, _ = text_login(server, b"ta", b"pa")
    gets = alice.stats().get("cmd_get")
    c.equal(ta.call(b"stats reset\r\n"), b"RESET\r\n", "ta's stats reset")
    st = ta.stats()
    c.equal((st.get("cmd_get"), st.get("get_hits"), st.get("curr_items")), ("0", "0", "22"),
            "ta's stats reset: its counters are 0, its items stay")
    c.equal(alice.stats().get("cmd_get"), gets, "ta's stats reset leaves the server's counters")
    alice.close()
    ta.close()


def check_bmemcached(c, server):
    from bmemcached.exceptions import MemcachedException
    ta, tb = bmemcached_client(server, "ta", "pa"), bmemcached_client(server, "tb", "pb")
    alice = bmemcached_client(server, "alice", "secret")
    for who, cl in (("tenant tb", tb), ("default user alice", alice)):
        c.check(cl.set("bk", b"v") and cl.get("bk") == b"v", "bmemcached %s: set, get" % who)
        c.equal(cl.incr("bn", 1) if cl.set("bn", 41) else None, 42,
                "bmemcached %s: incr" % who)
        c.equal(cl.set_multi({"bm%d" % i: b"y%d" % i for i in range(20)}), [],
                "bmemcached %s: set_multi (no key failed)" % who)
        c.equal(cl.get_multi(["bm%d" % i for i in range(20)] + ["absent"]),
                {"bm%d" % i: b"y%d" % i for i in range(20)}, "bmemcached %s: get_multi" % who)
        c.check(cl.delete("bk") and cl.get("bk") is None, "bmemcached %s: delete" % who)
    for cl, value in ((ta, b"bA"), (tb, b"bB"), (alice, b"bD")):
        cl.set("bsame", value)
    c.equal([cl.get("bsame") for cl in (ta, tb, alice)], [b"bA", b"bB", b"bD"],
            "bmemcached: the same key in ta, tb and the default keyspace")
    c.equal(ta.get_multi(["bm%d" % i for i in range(20)]), {},
            "bmemcached: ta sees none of tb's keys")
    # bmemcached expects 0x08 for a failed login (its own table) and so raises its generic
    # error carrying the server's status; memcached's is 0x20, "Authentication error".
    for who, cl in (("a wrong password", bmemcached_client(server, "tb", "wrong")),
                    ("no credentials", bmemcached_client(server))):
        e, got = raises(lambda: cl.get("bsame"))
        c.check(isinstance(e, MemcachedException) and e.code == AUTH_ERROR and got is None,
                "bmemcached with %s: status 0x20, no value" % who,
                "raised %r, returned %r" % (e, got))
        cl.disconnect_all()
    for cl in (ta, tb, alice):
        cl.disconnect_all()


def memcstat(server, *flags):
    tool = shutil.which("memcstat")
    run = subprocess.run([tool, "--binary", "--servers=127.0.0.1:%d" % server.port] +
                         list(flags), capture_output=True, text=True, timeout=20)
    return run.returncode, run.stdout + run.stderr


def check_memcstat(c, server):
    if not shutil.which("memcstat"):
        c.check(False, "memcstat is installed (libmemcached-tools)")
        return
    code, out = memcstat(server, "--username=ta", "--password=pa")
    c.check(code == 0 and "limit_maxbytes: %d" % QUOTA in out and "curr_items:" in out and
            "curr_connections" not in out,
            "memcstat --binary --username ta: ta's own statistics", out[-1000:])
    code, out = memcstat(server, "--username=alice", "--password=secret")
    c.check(code == 0 and "curr_connections:" in out,
            "memcstat --binary --username alice: the server's statistics", out[-1000:])
    code, out = memcstat(server, "--username=ta", "--password=wrong")
    c.check(code != 0 and "AUTHENTICATION FAILURE" in out and "pid:" not in out,
            "memcstat with a wrong password: an error, no statistics", out[-1000:])
    code, out = memcstat(server)  # memcstat prints nothing and exits 0 here
    c.check("pid:" not in out, "memcstat without credentials: no statistics", out[-1000:])


# ----------------------------------------------------------------------------- isolation


def b_data_set():
    """{key: value} of about B_DATA bytes, values 1-20 kB."""
    data, total, i = {}, 0, 0
    while total < B_DATA:
        key = "b:%d" % i
        size = 1000 + zlib.crc32(key.encode()) % 19000
        data[key] = value_for(key, size)
        total += size
        i += 1
    return data


def write_volume(client, prefix, volume, seed, errors, sizes=(MIN_VALUE, MAX_VALUE)):
    """Writes `volume` bytes of values of `sizes` (min, max) under prefix:N in batches;
    returns the (key, size) list. A failed set is appended to `errors`."""
    rng = random.Random(seed)
    written, sent, n = [], 0, 0
    while sent < volume and len(errors) < 20:
        batch = {}
        for _ in range(BATCH):
            key = "%s:%d" % (prefix, n)
            n += 1
            batch[key] = value_for(key, rng.randint(*sizes))
            sent += len(batch[key])
        failed = client.set_multi(batch)
        if failed:
            errors.append("%s: set_multi failed for %d keys, e.g. %s" %
                          (prefix, len(failed), failed[:3]))
        written.extend((k, len(v)) for k, v in batch.items())
    return written


def check_recent(c, client, written, what):
    """The last keys written read back right, or are missing (evicted): never wrong."""
    recent = [k for k, _ in written[-200:]]
    got = client.get_multi(recent)
    wrong = [k for k, v in got.items() if v != value_for(k, len(v)) or
             len(v) != dict(written[-200:])[k]]
    c.check(not wrong, "%s: values read back are the ones written" % what, str(wrong[:3]))
    c.check(len(got) > 0, "%s: its latest keys are present" % what, "0 of %d" % len(recent))


def check_unauthenticated(c, server, keys):
    key = keys[0].encode()
    with server.conn() as conn:
        conn.send(b"get %s\r\nstats\r\nmg %s v\r\n" % (key, key))
        got = b"".join(conn.read_line() for _ in range(3))
        c.equal(got, b"CLIENT_ERROR unauthenticated\r\n" * 3,
                "unauthenticated text client: no value, no stats")
    for what, request in (("GET", pkt(GET, key)), ("STAT", pkt(STAT))):
        with server.conn() as conn:
            conn.send(request)
            r = read_responses_n(conn, 2)
            c.check(len(r) == 2 and not isinstance(r[0], str) and r[0].status == AUTH_ERROR and
                    key not in r[0].value and r[1] == "Closed",
                    "unauthenticated binary %s: 0x20 and the connection closed" % what,
                    repr(r))
    with server.conn() as conn:  # a wrong SASL password, then the same
        conn.send(pkt(SASL_AUTH, b"PLAIN", b"\0tb\0nope") + pkt(GET, key))
        r = read_responses_n(conn, 3)
        c.check(len(r) == 3 and [x.status for x in r[:2]] == [AUTH_ERROR, AUTH_ERROR] and
                r[2] == "Closed", "binary GET after a wrong SASL password: 0x20, closed",
                repr(r))
    import pylibmc
    cl = pylibmc_client(server)
    e, got = raises(lambda: cl.get_multi(keys[:50]))
    c.check(not got, "pylibmc without credentials gets no value", "got %d" % len(got or {}))
    e, got = raises(cl.get_stats)
    c.check(isinstance(e, pylibmc.Error), "pylibmc without credentials gets no stats",
            "got %r" % (got,))
    cl.disconnect_all()


def check_isolation(c, server):
    b_data = b_data_set()
    tb = pylibmc_client(server, "tb", "pb")
    c.equal(tb.set_multi(b_data), [], "B stores its %s data set (%d items)" %
            (mib(sum(map(len, b_data.values()))), len(b_data)))
    c.check(tb.get_multi(list(b_data)) == b_data, "B's data set reads back before A writes")
    b_before = stats_of(tb)
    ta = pylibmc_client(server, "ta", "pa")
    c.equal(ta.get_multi(list(b_data)), {}, "A cannot read B's keys")
    errors = []
    start = time.monotonic()
    written = write_volume(ta, "a", A_WRITES, 1, errors)
    written += write_volume(ta, "large", LARGE_WRITES, 3, errors, (MIN_LARGE, MAX_LARGE))
    took = time.monotonic() - start
    c.check(not errors, "A's sets all succeed", "\n     ".join(errors[:5]))
    c.note("A wrote %s in %d sets in %.1f s" % (mib(sum(s for _, s in written)), len(written),
                                                 took))
    check_recent(c, ta, written, "A")
    got = tb.get_multi(list(b_data))
    missing = [k for k in b_data if k not in got]
    wrong = [k for k in got if got[k] != b_data[k]]
    c.check(not missing and not wrong, "B's data set is 100 % intact after A wrote",
            "%d missing, %d wrong of %d (e.g. %s)" % (len(missing), len(wrong), len(b_data),
                                                     (missing + wrong)[:3]))
    a, b = stats_of(ta), stats_of(tb)
    c.equal(a.get("limit_maxbytes"), str(QUOTA), "A's stats: limit_maxbytes = 16 MiB")
    c.check(0 < int(a.get("bytes", -1)) <= QUOTA, "A's stats: 0 < bytes <= its quota",
            "bytes=%s" % a.get("bytes"))
    c.check(int(a.get("evictions", 0)) > 0, "A's stats: evictions > 0", repr(a))
    c.equal((b.get("curr_items"), b.get("bytes"), b.get("evictions")),
            (b_before.get("curr_items"), b_before.get("bytes"), "0"),
            "B's stats: the same items and bytes as before A wrote, no evictions")
    c.note("A: %s items, %s bytes, %s evictions; B: %s items, %s bytes" %
           (a.get("curr_items"), a.get("bytes"), a.get("evictions"), b.get("curr_items"),
            b.get("bytes")))
    c.equal(ta.get_multi(list(b_data)), {}, "A still cannot read B's keys")
    check_rss(c, server, "isolation")
    check_unauthenticated(c, server, list(b_data))
    ta.disconnect_all()
    tb.disconnect_all()
    return b_data, written


# ----------------------------------------------------------------------------- SIGHUP


def reload(server, users):
    """Rewrites the auth file, sends SIGHUP and waits for the server's log line."""
    count = server.log().count("SIGHUP: reloaded")
    write(server.auth_file, users)
    server.proc.send_signal(signal.SIGHUP)
    end = time.monotonic() + EVENT_TIMEOUT
    while time.monotonic() < end:
        if server.log().count("SIGHUP: reloaded") > count:
            return True
        time.sleep(0.05)
    return False


def wait_closed(conn):
    try:
        conn.read_until(b"\0never\0", timeout=EVENT_TIMEOUT)
    except harness.Closed:
        return True
    except harness.Timeout:
        return False
    return False


def check_reload(c, server, b_data, a_written):
    ta = pylibmc_client(server, "ta", "pa")
    for quota, what in ((32, "raised"), (8, "lowered")):
        users = USERS.replace(b"ta:pa:16", b"ta:pa:%d" % quota)
        c.check(reload(server, users), "SIGHUP with ta's quota %s to %d MiB" % (what, quota))
        st = stats_of(ta)
        c.equal(st.get("limit_maxbytes"), str(quota * MIB),
                "ta's limit_maxbytes after its quota was %s" % what)
    c.check(int(st.get("bytes", -1)) <= 8 * MIB, "a lowered quota evicts ta down to it",
            "bytes=%s" % st.get("bytes"))
    errors = []
    write_volume(ta, "a2", 24 * MIB, 2, errors)
    st = stats_of(ta)
    c.check(not errors and int(st.get("bytes", -1)) <= 8 * MIB,
            "ta writing 24 MiB more stays within 8 MiB", "bytes=%s %s" % (st.get("bytes"),
                                                                         errors[:2]))
    items_before = st.get("curr_items")
    tb_conn, reply = text_login(server, b"tb", b"pb")
    c.equal(reply, b"STORED\r\n", "tb logs in (text)")
    c.equal(tb_conn.get(b"b:0"), b_data["b:0"], "tb's data set is still there")
    without_b = b"".join(line + b"\n" for line in USERS.splitlines()
                         if not line.startswith(b"tb:")).replace(b"ta:pa:16", b"ta:pa:8")
    c.check(reload(server, without_b), "SIGHUP without tb")
    c.check(wait_closed(tb_conn), "tb's connection is closed")
    tb_conn.close()
    conn, reply = text_login(server, b"tb", b"pb")
    c.equal(reply, b"CLIENT_ERROR authentication failure\r\n", "tb can no longer log in")
    conn.close()
    c.equal(stats_of(ta).get("curr_items"), items_before, "ta's items untouched by tb's removal")
    c.check(reload(server, without_b + b"tb:pb:16\n"), "SIGHUP with tb added again")
    tb = pylibmc_client(server, "tb", "pb")
    c.equal(tb.get_multi(list(b_data)), {}, "tb re-added: its old items are gone (flushed)")
    st = stats_of(tb)
    c.equal((st.get("curr_items"), st.get("bytes"), st.get("limit_maxbytes")),
            ("0", "0", str(QUOTA)), "tb re-added: empty keyspace, its quota")
    c.check(tb.set("b:0", b"new") and tb.get("b:0") == b"new", "tb re-added stores again")
    check_recent(c, ta, [(k, s) for k, s in a_written if k.startswith("a2:")] or a_written,
                 "ta after the reloads")
    for cl in (ta, tb):
        cl.disconnect_all()


# ----------------------------------------------------------------------------- overcommit


def check_overcommit(c, args, tmp):
    path = os.path.join(tmp, "overcommit")
    write(path, OVERCOMMIT_USERS)
    users = [("t1", "p1"), ("t2", "p2"), ("t3", "p3")]
    with harness.Server(args.server, ["-m", str(LIMIT_MIB), "-t", "2", "-Y", path] +
                        SANITIZED_ARGS) as server:
        clients = [pylibmc_client(server, u, p) for u, p in users]
        results, errors = [None] * len(users), []
        quiet = pylibmc_client(server, "quiet", "pq")
        q_data = b_data_set()
        c.equal(quiet.set_multi(q_data), [], "overcommit: the quiet tenant stores 5 MiB")

        def writer(i):
            try:
                results[i] = write_volume(clients[i], users[i][0], OVERCOMMIT_WRITES, 10 + i,
                                          errors)
            except Exception as e:  # a client error ends this writer: a failure
                errors.append("%s: %s: %s" % (users[i][0], type(e).__name__, e))

        start = time.monotonic()
        threads = [threading.Thread(target=writer, args=(i,), daemon=True)
                   for i in range(len(users))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        took = time.monotonic() - start
        c.check(not any(t.is_alive() for t in threads), "overcommit: the writers finished")
        c.check(not errors, "overcommit: every set succeeds", "\n     ".join(errors[:5]))
        c.note("overcommit: 3 tenants (48 MiB each at -m %d) wrote %s each in %.1f s" %
               (LIMIT_MIB, mib(OVERCOMMIT_WRITES), took))
        held = []
        for (user, _), cl, written in zip(users, clients, results):
            st = stats_of(cl)
            held.append(int(st.get("bytes", 0)))
            c.check(st.get("limit_maxbytes") == str(48 * MIB) and
                    0 < int(st.get("bytes", -1)) <= 48 * MIB and int(st.get("evictions")) > 0,
                    "overcommit: %s holds items within its quota and evicted" % user, repr(st))
            c.note("overcommit: %s holds %s items, %s; %s evictions" %
                   (user, st.get("curr_items"), mib(int(st.get("bytes", 0))),
                    st.get("evictions")))
            if written:
                check_recent(c, cl, written, "overcommit " + user)
            cl.disconnect_all()
        total = sum(held)
        c.check(total <= LIMIT_MIB * MIB, "overcommit: the tenants' bytes add up to <= -m",
                mib(total))
        # Equal quotas, equal writes: the store evicts from whoever is above its fair share,
        # so none is squeezed out by the others (a quarter of an equal share is far below
        # what fair eviction leaves each).
        c.check(min(held) >= total / len(held) / 4,
                "overcommit: no tenant is squeezed out by the others",
                ", ".join(mib(h) for h in held))
        got = quiet.get_multi(list(q_data))
        c.check(got == q_data, "overcommit: the quiet tenant's data set is 100 % intact",
                "%d of %d read back right" % (sum(got.get(k) == v for k, v in q_data.items()),
                                              len(q_data)))
        c.equal(stats_of(quiet).get("evictions"), "0", "overcommit: the quiet tenant lost none")
        quiet.disconnect_all()
        check_rss(c, server, "overcommit")
        c.check(server.alive(), "overcommit: server still running", server.log()[-2000:])
        c.equal(server.stop(), 0, "overcommit: the server exits with 0 on SIGTERM")


def main(args):
    harness.skip_unless_cinch(args, "tenants (cinch-only)")
    c = harness.Checker(args.verbose)
    with tempfile.TemporaryDirectory(prefix="cinch-tenants-") as tmp:
        auth_file = os.path.join(tmp, "users")
        write(auth_file, USERS)
        with harness.Server(args.server, ["-m", str(LIMIT_MIB), "-t", "2",
                                          "-Y", auth_file]) as server:
            server.auth_file = auth_file
            check_pylibmc(c, server)
            check_bmemcached(c, server)
            check_memcstat(c, server)
            b_data, a_written = check_isolation(c, server)
            check_reload(c, server, b_data, a_written)
            c.check(server.alive(), "server still running", server.log()[-2000:])
            # SIGTERM: a clean exit (a sanitizer's report at exit would make it non-zero).
            c.equal(server.stop(), 0, "the server exits with 0 on SIGTERM")
        check_overcommit(c, args, tmp)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=150)
