#!/usr/bin/env python3
"""memcached's binary protocol: differential against memcached 1.6.18, then real clients.

1. Differential: each case is a list of request packets sent on a fresh connection to both
   memcached and the server (same flags); the responses are decoded into packets and compared
   field by field after normalising: CAS values become <cas1>, <cas2>... by first appearance
   within the case (so "the cas a set returned is the one a get shows" is still compared), the
   body of a VERSION response and the key/value of STAT packets are dropped (they differ by
   design; their number is not compared either: each list shows as one <stats> packet, then
   its terminator). A case ends with a NOOP
   carrying a sentinel opaque and is read up to its response, or, when it closes the
   connection, until EOF.
2. pylibmc with binary=True: storage, retrieval, CAS, arithmetic, multi-get, touch, delete.
3. python3-binary-memcached (bmemcached), which speaks only the binary protocol.
4. `memcstat --binary` lists the server's statistics.
5. A set whose header announces a 4 GB value is answered 0x03 before the value is sent (the
   server does not buffer it), and the server goes on. (A value of 1 GB memcached answers
   only once it has read and discarded it; cinch answers at once, unit-tested.)
6. cinch only: with a file tier (-m 24 -o ext_path), 40 MB written with setq and read back
   with getkq: at least 95 % present, none corrupt, and reads waited for the tier's I/O
   threads (tier_waits moved).
"""

import os
import shutil
import struct
import subprocess
import tempfile
import time
import zlib

import harness

SERVER_ARGS = ["-m", "64", "-I", "1m", "-t", "2"]
SENTINEL_OPAQUE = 0x5E5E5E5E
CLOSED = "<connection closed>"

# Opcodes (memcached's protocol_binary.h).
GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP, VERSION = range(0x0c)
GETK, GETKQ, APPEND, PREPEND, STAT = 0x0c, 0x0d, 0x0e, 0x0f, 0x10
SETQ, ADDQ, REPLACEQ, DELETEQ, INCRQ, DECRQ, QUITQ, FLUSHQ, APPENDQ, PREPENDQ = range(0x11, 0x1b)
VERBOSITY, TOUCH, GAT, GATQ = 0x1b, 0x1c, 0x1d, 0x1e
SASL_LIST, SASL_AUTH, SASL_STEP, GATK, GATKQ = 0x20, 0x21, 0x22, 0x23, 0x24


def pkt(op, key=b"", value=b"", extras=b"", cas=0, opaque=0, bodylen=None, magic=0x80):
    body = len(extras) + len(key) + len(value) if bodylen is None else bodylen
    return struct.pack(">BBHBBHIIQ", magic, op, len(key), len(extras), 0, 0, body, opaque,
                       cas) + extras + key + value


def store(op, key, value, flags=0, exptime=0, cas=0, opaque=0):
    return pkt(op, key, value, struct.pack(">II", flags, exptime), cas, opaque)


def arith(op, key, delta, initial, exptime, cas=0):
    return pkt(op, key, extras=struct.pack(">QQI", delta, initial, exptime), cas=cas)


def touch(op, key, exptime):
    return pkt(op, key, extras=struct.pack(">I", exptime))


# Each case: (name, [request bytes...], ends_by_close). {k} in keys is the case's prefix.
def cases():
    K = b"{k}"
    big = b"v" * (1024 * 1024 + 1)
    return [
        ("set_get_getk", [store(SET, K + b"a", b"hello", 7), pkt(GET, K + b"a", opaque=9),
                          pkt(GETK, K + b"a"), pkt(GET, K + b"none"), pkt(GETK, K + b"none")],
         False),
        ("quiet_gets", [store(SET, K + b"a", b"1"), pkt(GETQ, K + b"x"), pkt(GETKQ, K + b"a"),
                        pkt(GETQ, K + b"a"), pkt(GETKQ, K + b"y")], False),
        ("add_replace", [store(REPLACE, K + b"a", b"1"), store(ADD, K + b"a", b"1"),
                         store(ADD, K + b"a", b"2"), store(REPLACE, K + b"a", b"3"),
                         store(ADDQ, K + b"a", b"4"), store(REPLACEQ, K + b"b", b"4"),
                         store(SETQ, K + b"c", b"5"), pkt(GET, K + b"a"), pkt(GET, K + b"c")],
         False),
        ("append_prepend", [pkt(APPEND, K + b"a", b"x"), pkt(PREPEND, K + b"a", b"x"),
                            store(SET, K + b"a", b"mid", 3), pkt(APPEND, K + b"a", b">"),
                            pkt(PREPEND, K + b"a", b"<"), pkt(APPENDQ, K + b"a", b"!"),
                            pkt(PREPENDQ, K + b"a", b"!"), pkt(GET, K + b"a")], False),
        ("cas", [store(SET, K + b"a", b"1"), pkt(GETK, K + b"a"),
                 store(SET, K + b"a", b"2", cas=1), store(SET, K + b"none", b"2", cas=1),
                 store(ADD, K + b"none", b"2", cas=1), store(REPLACE, K + b"a", b"2", cas=1),
                 pkt(DELETE, K + b"a", cas=1), pkt(APPEND, K + b"a", b"x", cas=1),
                 pkt(GET, K + b"a")], False),
        ("delete", [store(SET, K + b"a", b"1"), pkt(DELETE, K + b"a"), pkt(DELETE, K + b"a"),
                    store(SET, K + b"b", b"1"), pkt(DELETEQ, K + b"b"), pkt(DELETEQ, K + b"b"),
                    pkt(GET, K + b"b")], False),
        ("incr_decr", [arith(INCR, K + b"n", 5, 10, 0), arith(INCR, K + b"n", 5, 10, 0),
                       arith(DECR, K + b"n", 100, 0, 0), arith(DECR, K + b"m", 1, 3, 0),
                       arith(INCR, K + b"x", 1, 1, 0xffffffff),
                       arith(DECR, K + b"x", 1, 1, 0xffffffff),
                       arith(INCRQ, K + b"n", 2, 0, 0), arith(DECRQ, K + b"n", 1, 0, 0),
                       arith(INCRQ, K + b"y", 1, 1, 0xffffffff),
                       arith(INCR, K + b"n", 2 ** 64 - 1, 0, 0), pkt(GET, K + b"n"),
                       store(SET, K + b"t", b"text"), arith(INCR, K + b"t", 1, 0, 0),
                       store(SET, K + b"s", b"  12"), arith(INCR, K + b"s", 1, 0, 0),
                       pkt(GET, K + b"s")], False),
        # memcached's safe_strtoull: a number may end at a NUL, "-0" is 0, "-5" is not a
        # number, and an empty value is refused before its CAS value is compared.
        ("incr_strtoull", [store(SET, K + b"z", b"5\0x"), arith(INCR, K + b"z", 1, 0, 0),
                           pkt(GET, K + b"z"), store(SET, K + b"m", b"-0"),
                           arith(INCR, K + b"m", 1, 0, 0), store(SET, K + b"n", b"-5"),
                           arith(INCR, K + b"n", 1, 0, 0), store(SET, K + b"e", b""),
                           arith(INCR, K + b"e", 1, 0, 0, cas=12345678901),
                           arith(DECR, K + b"e", 1, 0, 0)], False),
        ("incr_cas", [arith(INCR, K + b"n", 1, 5, 0), pkt(GET, K + b"n"),
                      arith(INCR, K + b"n", 1, 0, 0, cas=1), arith(INCR, K + b"n", 1, 0, 0)],
         False),
        ("touch_gat", [store(SET, K + b"a", b"val", 9, 100), touch(TOUCH, K + b"a", 1000),
                       touch(GAT, K + b"a", 0), touch(GATK, K + b"a", 0),
                       touch(GATQ, K + b"a", 0), touch(GATKQ, K + b"a", 0),
                       touch(TOUCH, K + b"none", 0), touch(GAT, K + b"none", 0),
                       touch(GATK, K + b"none", 0), touch(GATQ, K + b"none", 0),
                       touch(GATKQ, K + b"none", 0)], False),
        # A time already past (absolute, before the server started): the item is answered,
        # then gone.
        ("touch_gat_past", [store(SET, K + b"a", b"val", 9), touch(GAT, K + b"a", 2592001),
                            pkt(GET, K + b"a"), store(SET, K + b"b", b"val", 9),
                            touch(TOUCH, K + b"b", 1000000000), pkt(GET, K + b"b"),
                            store(SET, K + b"c", b"val"), touch(GATKQ, K + b"c", 2592001),
                            pkt(GETK, K + b"c")], False),
        # A store and an incr/decr creation already expired: a fresh CAS value, the item gone.
        ("expired_on_arrival", [store(SET, K + b"a", b"v", 0, 2592001), pkt(GET, K + b"a"),
                                store(ADD, K + b"a", b"v", 0, 1000000000),
                                arith(INCR, K + b"n", 1, 5, 2592001), pkt(GET, K + b"n"),
                                store(SET, K + b"b", b"v"),
                                store(REPLACE, K + b"b", b"w", 0, 2592001),
                                pkt(GET, K + b"b")], False),
        ("flush", [store(SET, K + b"a", b"1"), pkt(FLUSH), pkt(GET, K + b"a"),
                   store(SET, K + b"a", b"1"), pkt(FLUSHQ), pkt(GET, K + b"a"),
                   pkt(FLUSH, extras=struct.pack(">I", 0))], False),
        ("version_noop", [pkt(VERSION, opaque=3), pkt(NOOP, opaque=4)], False),
        # memcached's binary stat knows "reset" and "settings" by their first bytes and has no
        # "conns".
        ("stat_groups", [pkt(STAT, b"nonsense"), pkt(STAT, b"reset"), pkt(STAT, b"resetting"),
                         pkt(STAT, b"settings2"), pkt(STAT, b"conns"), pkt(STAT, b"Reset")],
         False),
        # memcached discards an unknown command's whole body length after its extras and key
        # (proto_bin.c), misframing the stream when they are not empty; cinch discards the
        # body: so unknown commands here carry a value only (verbosity is one in memcached 1.6).
        ("unknown_and_verbosity", [pkt(VERBOSITY, value=struct.pack(">I", 1)), pkt(0x40),
                                   pkt(0x30, value=b"value"), pkt(0xfe)], False),
        ("sasl_without_users", [pkt(SASL_LIST), pkt(SASL_AUTH, b"PLAIN", b"\0u\0p"),
                                pkt(SASL_STEP, b"PLAIN", b"x")], False),
        ("too_large", [store(SET, K + b"a", b"old"), store(SET, K + b"a", big),
                       pkt(GET, K + b"a"), store(ADD, K + b"b", big),
                       pkt(APPEND, K + b"a", big)], False),
        ("binary_key", [store(SET, K + bytes(range(1, 32)), b"\0\r\n"),
                        pkt(GETK, K + bytes(range(1, 32)))], False),
        ("key_250", [store(SET, K + b"x" * (250 - len(b"d000_")), b"1"),
                     pkt(GET, K + b"x" * (250 - len(b"d000_")))], False),
        ("key_251_closes", [pkt(GET, K + b"x" * (251 - len(b"d000_")))], True),
        ("bad_lengths_close", [pkt(GET, K + b"a", bodylen=1)], True),
        ("noop_with_body_closes", [pkt(NOOP, value=b"x")], True),
        ("set_without_extras_closes", [pkt(SET, K + b"a", b"v")], True),
        ("text_after_binary_closes", [pkt(NOOP), b"get a\r\n" * 4], True),
        ("quit", [store(SET, K + b"a", b"1"), pkt(QUIT, opaque=7)], True),
        ("quitq", [pkt(QUITQ)], True),
    ]


class Response:
    def __init__(self, raw):
        (self.magic, self.opcode, keylen, extlen, self.dtype, self.status, body, self.opaque,
         self.cas) = struct.unpack(">BBHBBHIIQ", raw[:24])
        self.extras = raw[24:24 + extlen]
        self.key = raw[24 + extlen:24 + extlen + keylen]
        self.value = raw[24 + extlen + keylen:24 + body]


def read_responses(conn, ends_by_close, timeout=5.0):
    """Responses up to the sentinel NOOP's (not included), or all until EOF; "<timeout>" last
    when neither came within `timeout` s."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        while len(conn.buf) >= 24:
            body = struct.unpack(">I", bytes(conn.buf[8:12]))[0]
            if len(conn.buf) < 24 + body:
                break
            r = Response(bytes(conn.buf[:24 + body]))
            del conn.buf[:24 + body]
            if r.opaque == SENTINEL_OPAQUE and r.opcode == NOOP and not ends_by_close:
                return out
            out.append(r)
        try:
            conn._fill(deadline)
        except harness.Closed:
            return out + ([CLOSED] + (["<%d stray bytes>" % len(conn.buf)] if conn.buf else []))
        except harness.Timeout:
            return out + ["<timeout>"]


def run_case(port, index, requests, ends_by_close):
    prefix = b"d%03d_" % index
    conn = harness.Conn(port, timeout=5.0)
    try:
        data = b"".join(fix_prefix(r, prefix) for r in requests)
        if not ends_by_close:
            data += pkt(NOOP, opaque=SENTINEL_OPAQUE)
        conn.send(data)
        return read_responses(conn, ends_by_close)
    finally:
        conn.close()


def fix_prefix(request, prefix):
    """Replaces {k} in a request's key (binary packets) or text, fixing the length fields."""
    if not request or request[0] != 0x80:
        return request.replace(b"{k}", prefix)
    magic, op, keylen, extlen, dtype, vb, body, opaque, cas = struct.unpack(
        ">BBHBBHIIQ", request[:24])
    extras = request[24:24 + extlen]
    key = request[24 + extlen:24 + extlen + keylen]
    value = request[24 + extlen + keylen:]
    declared_body = body
    new_key = key.replace(b"{k}", prefix)
    body = declared_body + len(new_key) - len(key)
    return struct.pack(">BBHBBHIIQ", magic, op, len(new_key), extlen, dtype, vb, body, opaque,
                       cas) + extras + new_key + value


def normalise(responses, prefix):
    cas_map = {}
    out = []
    stats = False
    for r in responses:
        if isinstance(r, str):
            out.append(r)
            continue
        cas = 0 if r.cas == 0 else cas_map.setdefault(r.cas, "<cas%d>" % (len(cas_map) + 1))
        key, value = r.key.replace(prefix, b"{k}"), r.value
        if r.opcode == VERSION and r.status == 0:
            value = b"<version>"
        if r.opcode == STAT and r.status == 0 and r.key:
            if stats:
                continue
            stats, key, value = True, b"<stats>", b""
        elif r.opcode == STAT:
            stats = False  # the list's terminator (or an error): a next list shows again
        out.append("magic=%#x op=%#x status=%#x dtype=%d opaque=%#x cas=%s extras=%s key=%r "
                   "value=%r" % (r.magic, r.opcode, r.status, r.dtype, r.opaque, cas,
                                 r.extras.hex(), key, value[:64]))
    return out


def differential(c, args):
    if harness.is_memcached(args.server):
        c.note("differential half compares memcached with itself")
    with harness.Server(harness.MEMCACHED, SERVER_ARGS) as ref, \
            harness.Server(args.server, SERVER_ARGS) as sut:
        for index, (name, requests, ends_by_close) in enumerate(cases()):
            prefix = b"d%03d_" % index
            want = normalise(run_case(ref.port, index, requests, ends_by_close), prefix)
            got = normalise(run_case(sut.port, index, requests, ends_by_close), prefix)
            detail = ""
            if want != got:
                detail = "\n".join("  memcached: %s\n  server:    %s" % (w, g)
                                   for w, g in zip(want + [""] * len(got), got + [""] * len(want))
                                   if w != g)
            c.check(want == got, "binary case %s" % name, detail)
        c.check(ref.alive() and sut.alive(), "both servers still running", sut.log()[-2000:])


def pylibmc_client(c, port):
    import pylibmc
    cl = pylibmc.Client(["127.0.0.1:%d" % port], binary=True,
                        behaviors={"cas": True, "tcp_nodelay": True})
    c.check(cl.set("a", "1"), "pylibmc binary set")
    c.equal(cl.get("a"), "1", "pylibmc binary get")
    c.check(cl.add("b", b"x" * 100000), "pylibmc binary add of a 100 kB value")
    c.equal(cl.get("b"), b"x" * 100000, "pylibmc binary get of a 100 kB value")
    c.check(not cl.add("a", "2"), "pylibmc binary add of an existing key fails")
    c.check(cl.replace("a", "3"), "pylibmc binary replace")
    c.check(cl.append("a", "4") and cl.prepend("a", "2"), "pylibmc binary append/prepend")
    c.equal(cl.get("a"), "234", "pylibmc binary value after append/prepend")
    c.equal(cl.incr("n", 1) if cl.set("n", 10) else None, 11, "pylibmc binary incr")
    c.equal(cl.decr("n", 20), 0, "pylibmc binary decr floors at 0")
    value, cas = cl.gets("a")
    c.check(cl.cas("a", "new", cas), "pylibmc binary cas with the value's cas")
    c.check(not cl.cas("a", "newer", cas), "pylibmc binary cas with a stale cas fails")
    cl.set_multi({"m%d" % i: "v%d" % i for i in range(50)})
    got = cl.get_multi(["m%d" % i for i in range(50)] + ["missing"])
    c.equal(got, {"m%d" % i: "v%d" % i for i in range(50)}, "pylibmc binary get_multi")
    c.check(cl.touch("a", 100), "pylibmc binary touch")
    c.check(cl.delete("a") and cl.get("a") is None, "pylibmc binary delete")
    stats = cl.get_stats()
    c.check(len(stats) == 1 and "curr_items" in stats[0][1], "pylibmc binary stats",
            repr(stats)[:500])
    cl.flush_all()
    c.check(cl.get("b") is None, "pylibmc binary flush_all")


def bmemcached_client(c, port):
    import bmemcached
    cl = bmemcached.Client(["127.0.0.1:%d" % port])
    c.check(cl.set("k", "v"), "bmemcached set")
    c.equal(cl.get("k"), "v", "bmemcached get")
    c.check(cl.set("obj", {"a": [1, 2]}), "bmemcached set of a pickled object")
    c.equal(cl.get("obj"), {"a": [1, 2]}, "bmemcached get of a pickled object")
    c.check(cl.add("new", 1) and not cl.add("new", 2), "bmemcached add")
    c.check(cl.replace("new", 3), "bmemcached replace")
    c.equal(cl.incr("count", 1) if cl.set("count", 5) else None, 6, "bmemcached incr")
    c.equal(cl.decr("count", 2), 4, "bmemcached decr")
    value, cas = cl.gets("k")
    c.equal(value, "v", "bmemcached gets")
    c.check(cl.cas("k", "w", cas), "bmemcached cas")
    c.check(not cl.cas("k", "x", cas), "bmemcached stale cas fails")
    c.equal(cl.get_multi(["k", "new", "nope"]), {"k": "w", "new": 3}, "bmemcached get_multi")
    c.check(cl.delete("k") and cl.get("k") is None, "bmemcached delete")
    stats = cl.stats()
    c.check(any("pid" in s for s in stats.values()), "bmemcached stats", repr(stats)[:300])
    c.check(cl.flush_all(), "bmemcached flush_all")
    cl.disconnect_all()


def memcstat(c, port):
    tool = shutil.which("memcstat")
    if not tool:
        c.check(False, "memcstat is installed (libmemcached-tools)")
        return
    run = subprocess.run([tool, "--binary", "--servers=127.0.0.1:%d" % port],
                         capture_output=True, text=True, timeout=20)
    out = run.stdout + run.stderr
    c.check(run.returncode == 0 and "pid:" in out and "curr_items:" in out,
            "memcstat --binary lists the statistics", out[-1000:])


def huge_set(value_length):
    key = b"huge"
    return struct.pack(">BBHBBHIIQ", 0x80, SET, len(key), 8, 0, 0, 8 + len(key) + value_length,
                       0, 0) + struct.pack(">II", 0, 0) + key


def huge_value_refused_on_its_header(c, port):
    conn = harness.Conn(port, timeout=5.0)
    try:
        conn.send(huge_set(0xfffffff0 - 12))
        r = read_responses_n(conn, 1)
        c.check(r and not isinstance(r[0], str) and r[0].status == 0x03,
                "a 4 GB set is answered 0x03 on its header", repr(r[:1]))
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(8):  # part of the value: discarded as it arrives
                conn.send(chunk)
        except OSError:  # memcached reads them as packets (bad magic) and closes
            pass
        conn.close()
        conn = harness.Conn(port, timeout=5.0)
        conn.send(pkt(NOOP, opaque=SENTINEL_OPAQUE))
        r = read_responses_n(conn, 1)
        c.check(r and not isinstance(r[0], str) and r[0].opcode == NOOP,
                "the server answers a new connection after it", repr(r[:1]))
    finally:
        conn.close()


def read_responses_n(conn, n):
    out = []
    deadline = time.monotonic() + 5.0
    while len(out) < n:
        while len(conn.buf) >= 24 and len(out) < n:
            body = struct.unpack(">I", bytes(conn.buf[8:12]))[0]
            if len(conn.buf) < 24 + body:
                break
            out.append(Response(bytes(conn.buf[:24 + body])))
            del conn.buf[:24 + body]
        if len(out) >= n:
            break
        try:
            conn._fill(deadline)
        except (harness.Closed, harness.Timeout) as e:
            return out + [type(e).__name__]
    return out


def tier_value(i):
    key = b"tier:%d" % i
    size = 20000 + zlib.crc32(key) % 2000
    return key, (key * (size // len(key) + 1))[:size]


# Under sanitizers their own memory takes most of -m 24 (the store got 2 MiB of 256 KiB
# segments under TSan): -m 48 leaves the store at least what -m 24 leaves it in a release build.
TIER_LIMIT_MIB = 48 if os.environ.get("CINCH_SANITIZE") else 24


def file_tier(c, args):
    if harness.is_memcached(args.server):
        c.skip("binary requests with a file tier", "cinch-specific")
        return
    count = 2000  # about 42 MB, beyond the store's share of -m
    with tempfile.TemporaryDirectory(prefix="cinch-bin-tier-") as tmp, \
            harness.Server(args.server, ["-m", str(TIER_LIMIT_MIB), "-t", "2", "-o",
                                         "ext_path=%s/tier:64m" % tmp]) as server:
        conn = harness.Conn(server.port, timeout=10.0)
        for start in range(0, count, 50):
            batch = b"".join(store(SETQ, *tier_value(i)) for i in range(start, start + 50))
            conn.send(batch + pkt(NOOP, opaque=SENTINEL_OPAQUE))
            errors = read_responses(conn, False)
            c.check(not errors, "binary setq batch %d stored" % start, repr(errors[:1]))
            if errors:
                return
        present = corrupt = 0
        for start in range(0, count, 50):
            batch = b"".join(pkt(GETKQ, tier_value(i)[0]) for i in range(start, start + 50))
            conn.send(batch + pkt(NOOP, opaque=SENTINEL_OPAQUE))
            for r in read_responses(conn, False):
                if isinstance(r, str):
                    c.check(False, "binary getkq batch answered", r)
                    return
                i = int(r.key.split(b":")[1])
                present += 1
                corrupt += r.value != tier_value(i)[1]
        conn.close()
        text = harness.Conn(server.port)
        stats = text.stats()
        text.close()
        c.check(present >= 0.95 * count, "binary reads with a file tier: %d of %d present" %
                (present, count), " ".join("%s=%s" % (k, v) for k, v in sorted(stats.items())
                                          if k.startswith(("tier_", "evictions", "get_oom"))))
        c.equal(corrupt, 0, "binary reads with a file tier: corrupt values")
        c.check(int(stats.get("tier_waits", 0)) > 0, "binary reads waited for the file tier",
                "tier_waits=%s tier_items=%s" % (stats.get("tier_waits"), stats.get("tier_items")))
        c.check(server.alive(), "server with a file tier still running", server.log()[-2000:])


def main(args):
    c = harness.Checker(args.verbose)
    differential(c, args)
    with harness.Server(args.server, SERVER_ARGS) as server:
        pylibmc_client(c, server.port)
        bmemcached_client(c, server.port)
        memcstat(c, server.port)
        huge_value_refused_on_its_header(c, server.port)
        c.check(server.alive(), "server still running", server.log()[-2000:])
    file_tier(c, args)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__))
