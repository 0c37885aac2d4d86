#!/usr/bin/env python3
"""Hostile clients: malformed, oversized, slow and abusive input must not hurt anyone else.

Before the cases, 2000 keys ("ds:00000".."ds:01999", 10 B .. 100 KiB values derived from the
key) are written and read back. After every case:

  * the server process is alive and a fresh client's set + get round trip is answered;
  * every data-set key is present and holds its value (-m 256 is far above the ~42 MB it needs,
    so nothing may be evicted; half_values' server at -m 64 holds the ~8 MB of values up to
    20000 B);
  * VmRSS, sampled every 20 ms during the case, never exceeded -m (skipped for memcached, with
    --no-rss, and when the environment variable CINCH_SANITIZE is set: shadow memory).

Cases (hostile keys are "hk:*"; no case writes, deletes or flushes a data-set key):
  random_bytes     6 MB of seeded random bytes and token soup on several connections
  long_lines       3 KiB and 10 MiB without a newline: closed, no reply; a 10 MiB get line
  key_251          251-byte keys in get/gets/set/add/delete/touch/incr/gat/mg/ms/md/ma
  bad_lengths      set/ms lengths -1, 4294967295, 2^31-1, 2^31-3 (then 4 MB), too short/long
  bad_terminators  data blocks ending in XY, \\n\\n, \\r\\r, \\n\\r, NUL NUL: bad data chunk
  bad_numbers      non-numbers in flags, exptime, bytes, cas, delta, verbosity, flush_all, gat,
                   touch and meta tokens: only error lines, nothing stored or flushed
  nul_bytes        NUL in command names, keys and lines; binary keys (meta b) and values
  binary_magic     0x80 then garbage: as the first byte, binary error responses only (or
                   nothing for an incomplete packet); on a later line of a text connection,
                   the lines before it are answered
  http             HTTP/1.x and HTTP/2 requests, a TLS ClientHello: closed without a reply
  meta_garbage     3000 meta commands with seeded garbage flags, each followed by "version"
  get_50k          one get of 50,000 keys (2000 of them data-set keys): every value right
  close_mid_value  a client closes mid-data (set, ms), mid-line, and with a reply unread
  slowloris        300 connections send one byte per 100 ms for 3 s; another client's round
                   trips stay < 1 s; the trickled requests are answered correctly at the end
  unread_gets      20 MB of "get hk:big" (500 KiB value) pipelined, replies never read
  too_many_conns   a second server with -c 50: extra connections get "ERROR Too many open
                   connections" or are closed; all slots come back once they close
  half_values      a third server with -m 64: 250 clients each send all but the last 1000
                   bytes of a 1 MB set at once (~4x -m in all), then the rest. Another client
                   is answered (STORED or out of memory) within 1 s throughout, every holder
                   gets a reply within 5 s, and the server serves new clients once they leave.
                   Nothing is evicted: connections have a memory budget of their own, and
                   holders that cannot get more are throttled or told out of memory.

Against memcached (a sanity check of the test) cases that pin cinchd-only behaviour say so.
"""

import base64
import os
import random
import select
import socket
import threading
import time
import zlib

import harness
from memory_limit import mib

LIMIT_MIB = 256
SERVER_ARGS = ["-m", str(LIMIT_MIB), "-t", "2"]
CONN_LIMIT = 50
DATASET_KEYS = 2000
DATASET_SIZES = (10, 100, 1000, 4000, 20000, 100 * 1024)  # picked by the key's CRC
BLOB = random.Random(20240601).randbytes(1 << 20)
TOO_MANY = b"ERROR Too many open connections\r\n"
ERROR_PREFIXES = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")


def value_for(key):
    """The data-set value of `key`: a window of BLOB whose size and offset come from its CRC."""
    crc = zlib.crc32(key)
    size = DATASET_SIZES[crc % len(DATASET_SIZES)]
    off = (crc >> 3) % (len(BLOB) - size)
    return BLOB[off:off + size]


def ds_key(i):
    return b"ds:%05d" % i


DATASET = {ds_key(i): value_for(ds_key(i)) for i in range(DATASET_KEYS)}
# half_values' server at -m 64: the data set without its 100 KiB values (~8 MB, not ~42 MB), so
# that what the holders manage to store (1 MB each) fits beside it without evicting any of it.
SMALL_DATASET = {k: v for k, v in DATASET.items() if len(v) <= 20000}


# ----------------------------------------------------------------------------- byte plumbing


def pump(sock, data, timeout=10.0, until=None, idle=0.5):
    """Sends `data` while reading replies, so neither side stalls on a full socket buffer.

    Stops once everything is sent and then `until(received)` holds (without `until`: `idle`
    seconds pass quietly), at EOF or a reset, or at `timeout`. Returns (received, sent, closed).
    """
    sock.setblocking(False)
    view, sent, got, closed = memoryview(data), 0, bytearray(), False
    end = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if sent == len(data):
            if until is not None and until(got):
                break
            if until is None and now - quiet_since >= idle:
                break
        wait = min(end - now, 0.05)
        r, w, _ = select.select([sock], [sock] if sent < len(data) else [], [], wait)
        if r:
            try:
                chunk = sock.recv(1 << 20)
            except BlockingIOError:
                chunk = None
            except OSError:
                chunk = b""
            if chunk == b"":
                closed = True
                break
            if chunk:
                got += chunk
                quiet_since = time.monotonic()
        if w:
            try:
                sent += sock.send(view[sent:sent + (256 << 10)])
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
    return bytes(got), sent, closed


def connect(server, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def exchange(server, data, timeout=5.0, until=None, idle=0.5):
    """pump() on a fresh connection, closed afterwards."""
    with connect(server) as s:
        return pump(s, data, timeout, until, idle)


def parse_values(buf):
    """A get/gets reply -> ([(key, value)], ended_with_END, error_line_or_None)."""
    items, pos = [], 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return items, False, None
        line = buf[pos:eol]
        if line == b"END":
            return items, eol + 2 == len(buf), None
        parts = line.split(b" ")
        if parts[0] != b"VALUE" or len(parts) < 4:
            return items, False, line
        size = int(parts[3])
        items.append((parts[1], buf[eol + 2:eol + 2 + size]))
        pos = eol + 2 + size + 2


def wrong_values(items):
    """Keys among `items` ([(key, value)]) that are not data-set keys with their own value."""
    return ["%r" % k[:40] for k, v in items if DATASET.get(k) != v]


def error_lines_only(reply):
    """True when `reply` is one or more lines, each an ERROR / CLIENT_ERROR / SERVER_ERROR."""
    lines = reply.split(b"\r\n")
    return len(lines) > 1 and lines[-1] == b"" and all(
        line.startswith(ERROR_PREFIXES) for line in lines[:-1])


CLOSED = b"<closed>"


def with_sentinel(conn, request, timeout=3.0):
    """Sends `request` then "version" (the sentinel: garbage may hold "mn", never "version");
    returns the reply before "VERSION ...", CLOSED if the server closed the connection first,
    or None if the sentinel's reply never came."""
    try:
        conn.send(request + b"version\r\n")
        reply = conn.read_until(b"VERSION ", timeout)[:-8]
        conn.read_line(timeout)
        return reply
    except harness.Timeout:
        return None
    except (harness.Closed, OSError):
        return CLOSED


# ----------------------------------------------------------------------------- the data set


def write_dataset(server, dataset=DATASET):
    keys = list(dataset)
    with server.conn(timeout=20) as conn:
        for i in range(0, len(keys), 100):
            batch = keys[i:i + 100]
            conn.send(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(dataset[k]), dataset[k])
                               for k in batch))
            replies = [conn.read_line() for _ in batch]
            bad = [r for r in replies if r != b"STORED\r\n"]
            if bad:
                raise harness.ServerError("data set write failed: %r" % bad[:3])


def dataset_problems(server, dataset=DATASET):
    """Data-set keys missing or wrong, as "key: what" strings (empty when all are intact)."""
    problems = []
    keys = list(dataset)
    with connect(server, timeout=10) as s:
        for i in range(0, len(keys), 200):
            batch = keys[i:i + 200]
            reply, _, closed = pump(s, b"get " + b" ".join(batch) + b"\r\n", 10.0,
                                    lambda got: got.endswith(b"END\r\n"))
            items, ended, err = parse_values(reply)
            if not ended:
                problems.append("get of %d keys: reply ended badly (closed %s, %r)" %
                                (len(batch), closed, err or reply[-60:]))
                break
            got = dict(items)
            for k in batch:
                if k not in got:
                    problems.append("%s: missing" % k.decode())
                elif got[k] != dataset[k]:
                    problems.append("%s: wrong value (%d bytes)" % (k.decode(), len(got[k])))
    return problems


# ----------------------------------------------------------------------------- per-case checks


class Context:
    def __init__(self, c, args, server):
        self.c, self.args, self.server = c, args, server
        self.memcached = harness.is_memcached(args.server)
        self.rss = (not self.memcached and not args.no_rss and
                    not os.environ.get("CINCH_SANITIZE"))
        self.results = []
        self.dataset = DATASET  # what the server of the case being run holds


def served(ctx, server, what):
    """A fresh client's set + get round trip, answered correctly within 1 s (after retries)."""
    value = b"probe:%f" % time.monotonic()
    end = time.monotonic() + 3.0
    last = ""
    while time.monotonic() < end:
        try:
            with server.conn(timeout=2) as conn:
                t0 = time.monotonic()
                stored = conn.set(b"hk:probe", value)
                if stored + b"\r\n" == TOO_MANY:
                    # Clients that just closed may still hold their slots until the server
                    # reads their FIN (too_many_conns): refused, as it should be; try again.
                    last = "refused: too many connections"
                    time.sleep(0.05)
                    continue
                ok = stored == b"STORED" and conn.get(b"hk:probe") == value
                took = time.monotonic() - t0
                return ctx.c.check(ok and took < 1.0, "%s: another client is served" % what,
                                   "ok %s, took %.3f s" % (ok, took))
        except (OSError, harness.Timeout, harness.Closed) as e:
            last = "%s: %s" % (type(e).__name__, e)
            time.sleep(0.1)
    return ctx.c.check(False, "%s: another client is served" % what, last)


def after_case(ctx, name, server, rss, limit_mib):
    c = ctx.c
    alive = c.check(server.alive(), "%s: server still running" % name, server.log()[-2000:])
    if not alive:
        return False
    served(ctx, server, name)
    problems = dataset_problems(server, ctx.dataset)
    c.check(not problems, "%s: data set intact (%d keys)" % (name, len(ctx.dataset)),
            "%d problems: %s" % (len(problems), "; ".join(problems[:5])))
    if problems:  # rewrite it so that later cases are judged on their own
        try:
            write_dataset(server, ctx.dataset)
        except (OSError, harness.ServerError, harness.Timeout, harness.Closed) as e:
            c.check(False, "%s: data set rewritten" % name, "%s: %s" % (type(e).__name__, e))
    if ctx.rss:
        peak = max(rss.max_kib, server.rss_kib() or 0)
        c.check(peak <= limit_mib * 1024, "%s: RSS <= %d MiB" % (name, limit_mib),
                "peak %s" % mib(peak))
    return True


def run_case(ctx, name, fn, server=None, limit_mib=LIMIT_MIB):
    server = server or ctx.server
    failed_before = ctx.c.failed
    start = time.monotonic()
    peak = None
    with harness.MemorySampler(server.pid) as rss:
        try:
            fn(ctx, server)
        except Exception as e:  # the case's own crash is its failure; the next case still runs
            import traceback

            traceback.print_exc()
            ctx.c.check(False, "%s: ran to completion" % name, "%s: %s" % (type(e).__name__, e))
    alive = after_case(ctx, name, server, rss, limit_mib)
    if ctx.rss and alive:
        peak = rss.max_kib
    ok = ctx.c.failed == failed_before
    ctx.results.append((name, ok))
    print("case %-16s %s  (%.1f s%s)" % (name, "ok" if ok else "FAILED", time.monotonic() - start,
                                        ", peak RSS %s" % mib(peak) if peak else ""), flush=True)
    return alive


# ----------------------------------------------------------------------------- the cases

# Commands for the token soup: everything a client may send except what changes the server as
# a whole (flush_all, shutdown, quit, cache_memlimit, memcached's slabs/lru/watch/lru_crawler).
SOUP_COMMANDS = [b"get", b"gets", b"gat", b"gats", b"touch", b"set", b"add", b"replace",
                 b"append", b"prepend", b"cas", b"incr", b"decr", b"delete", b"mg", b"ms",
                 b"md", b"ma", b"mn", b"me", b"verbosity", b"version", b"stats", b"debugtime",
                 b"bget", b"misbehave"]
SOUP_TOKENS = [b"hk:r0", b"hk:r1", b"hk:r2", b"hk:r3", b"0", b"1", b"-1", b"4294967295",
               b"2147483647", b"18446744073709551615", b"99999999999999999999", b"1x", b"abc",
               b"noreply", b"v", b"k", b"c", b"t", b"q", b"T10", b"N5", b"O123", b"MS", b"MA",
               b"I", b"D5", b"J3", b"b", b"E1", b"S5", b"\xff", b"\t", b"", b"\x00", b"x" * 300]


def token_soup(rng, size):
    out = bytearray()
    while len(out) < size:
        words = [rng.choice(SOUP_COMMANDS)] + [rng.choice(SOUP_TOKENS)
                                               for _ in range(rng.randrange(6))]
        out += b" ".join(words) + rng.choice([b"\r\n", b"\r\n", b"\r\n", b"\n", b" ", b""])
        if rng.random() < 0.3:
            n = rng.choice([0, 1, 5, 100, 4000])
            out += rng.randbytes(n) + rng.choice([b"\r\n", b"\r\n", b"XY", b"\n"])
    return bytes(out)


def random_bytes(ctx, server):
    rng = random.Random(1)
    total, closed_early = 0, 0
    streams = []
    for i in range(3):  # pure random bytes; memcached reads a first 0x80 as binary protocol
        data = bytearray(rng.randbytes(1 << 20))
        data[0] = 0x41
        streams.append(bytes(data))
    for i in range(3):  # random printable lines: reach the parser's deeper states
        streams.append(bytes(rng.choice(b"abcdegilmnprstvx 0123456789\r\n:-")
                             for _ in range(256 << 10)))
    for i in range(4):
        streams.append(token_soup(rng, 3 << 19))
    for data in streams:
        _, sent, closed = exchange(server, data, timeout=4.0, idle=0.2)
        total += sent
        closed_early += closed and sent < len(data)
    ctx.c.note("random_bytes: %d streams, %.1f MB accepted, %d closed by the server early" %
               (len(streams), total / 1e6, closed_early))


def long_lines(ctx, server):
    c = ctx.c
    reply, _, closed = exchange(server, b"x" * 3072, timeout=3.0, idle=2.0)
    c.check(closed and not reply, "long_lines: 3 KiB without a newline: closed, no reply",
            "closed %s, reply %r" % (closed, reply[:80]))
    reply, sent, closed = exchange(server, b"y" * (10 << 20), timeout=10.0, idle=2.0)
    c.check(closed and not reply, "long_lines: 10 MiB without a newline: closed, no reply",
            "closed %s after %d bytes, reply %r" % (closed, sent, reply[:80]))
    line = b"get " + b"hk:nope " * ((10 << 20) // 8)
    reply, sent, closed = exchange(server, line, timeout=10.0, idle=0.5)
    c.check(not reply, "long_lines: a 10 MiB get line with no newline: no reply yet",
            "closed %s after %d bytes, reply %r" % (closed, sent, reply[:80]))
    # memcached gives no reply within any wait worth making: only a note for it.
    reply, sent, closed = exchange(server, line + b"\r\n", timeout=3.0 if ctx.memcached else 15.0,
                                   until=lambda got: got.endswith(b"END\r\n"))
    if ctx.memcached:
        c.note("long_lines: memcached answers a 10 MiB get line with %r (closed %s)" %
               (reply[:40], closed))
    else:
        c.equal(reply, b"END\r\n", "long_lines: a 10 MiB get line of missing keys")


def key_251(ctx, server):
    k = b"hk:" + b"k" * 248
    assert len(k) == 251
    requests = [b"get %s\r\n" % k, b"gets %s\r\n" % k, b"get ds:00001 %s\r\n" % k,
                b"set %s 0 0 1\r\nx\r\n" % k, b"add %s 0 0 1\r\nx\r\n" % k,
                b"delete %s\r\n" % k, b"touch %s 10\r\n" % k, b"incr %s 1\r\n" % k,
                b"gat 10 %s\r\n" % k, b"mg %s v\r\n" % k, b"ms %s 1\r\nx\r\n" % k,
                b"md %s\r\n" % k, b"ma %s\r\n" % k]
    with ctx.server.conn() as conn:
        for req in requests:
            reply = with_sentinel(conn, req)
            what = "key_251: %s" % req.split(b" ")[0].decode()
            if req.startswith(b"get ds:"):
                items, _, _ = parse_values(reply + b"END\r\n") if reply else ([], 0, 0)
                ctx.c.check(reply is not None and b"CLIENT_ERROR" in reply and
                            not wrong_values(items), what + " with a data-set key first",
                            "reply %r" % (reply or b"")[:200])
                continue
            ctx.c.check(reply is not None and error_lines_only(reply), what, "reply %r" % reply)
        ok = with_sentinel(conn, b"set %s 0 0 1\r\nx\r\nget %s\r\ndelete %s\r\n" %
                           ((k[:250],) * 3))
        ctx.c.equal(ok, b"STORED\r\nVALUE %s 0 1\r\nx\r\nEND\r\nDELETED\r\n" % k[:250],
                    "key_251: a 250-byte key works")


def bad_lengths(ctx, server):
    c = ctx.c
    with server.conn() as conn:
        for n in (b"-1", b"4294967295", b"2147483647", b"-2147483648", b"99999999999999999999"):
            reply = with_sentinel(conn, b"set hk:len 0 0 %s\r\n" % n)
            c.equal(reply, b"CLIENT_ERROR bad command line format\r\n", "bad_lengths: set %s" %
                    n.decode())
            reply = with_sentinel(conn, b"ms hk:len %s T0\r\n" % n)
            c.check(reply is not None and error_lines_only(reply), "bad_lengths: ms %s" %
                    n.decode(), "reply %r" % reply)
        # One byte over -I 1m: refused, its data swallowed, the connection stays in step.
        big = 1024 * 1024 + 1
        reply = with_sentinel(conn, b"set hk:len 0 0 %d\r\n%s\r\nget hk:len\r\n" %
                              (big, b"z" * big), timeout=5)
        c.equal(reply, b"SERVER_ERROR object too large for cache\r\nEND\r\n",
                "bad_lengths: set over -I, then get")
        # Declared shorter than sent: the data block ends early, the rest is parsed as commands.
        reply = with_sentinel(conn, b"set hk:len 0 0 3\r\nabcdef\r\n")
        c.check(reply is not None and reply.startswith(b"CLIENT_ERROR bad data chunk\r\n"),
                "bad_lengths: data longer than declared", "reply %r" % reply)
        # Declared longer than sent: the server waits for the rest, which then ends badly.
        conn.send(b"set hk:len 0 0 10\r\nabc\r\n")
        time.sleep(0.1)
        reply = with_sentinel(conn, b"defghijk\r\n")
        c.check(reply is not None and reply.startswith(b"CLIENT_ERROR bad data chunk\r\n"),
                "bad_lengths: data shorter than declared", "reply %r" % reply)
        got = conn.get(b"hk:len")
        c.check(got is None, "bad_lengths: nothing stored under hk:len", "got %r" % got)
    # 2^31-3: the largest length memcached parses. Refused (too large); the 2 GB it promises are
    # swallowed, so the server must not buffer or allocate them: 4 MB of it, then a close.
    reply, sent, closed = exchange(server, b"set hk:len2 0 0 2147483645\r\n" + b"a" * (4 << 20),
                                   timeout=5.0, idle=0.3)
    c.check(reply in (b"", b"SERVER_ERROR object too large for cache\r\n"),
            "bad_lengths: set 2^31-3 then 4 MB", "reply %r, sent %d" % (reply[:80], sent))
    reply, sent, closed = exchange(server, b"ms hk:len2 2147483645 T0\r\n" + b"a" * (4 << 20),
                                   timeout=5.0, idle=0.3)
    c.check(not reply or error_lines_only(reply), "bad_lengths: ms 2^31-3 then 4 MB",
            "reply %r" % reply[:80])
    # 4294967297 is cut to 32 bits (length 1) by memcached's strtoul-then-int parsing.
    with server.conn() as conn:
        reply = with_sentinel(conn, b"set hk:len3 0 0 4294967297\r\nx\r\n")
        c.check(reply in (b"STORED\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
                "bad_lengths: set 4294967297", "reply %r" % reply)


def bad_terminators(ctx, server):
    c = ctx.c
    with server.conn() as conn:
        c.equal(conn.set(b"hk:term", b"old"), b"STORED", "bad_terminators: set hk:term")
        for end in (b"XY", b"\n\n", b"\r\r", b"\n\r", b"\x00\x00", b" \n", b"\rX", b"\n\x00"):
            data = b"abc" + end
            reply = with_sentinel(conn, b"set hk:term 0 0 3\r\n%sget hk:term\r\n" % data)
            ok = reply in (b"CLIENT_ERROR bad data chunk\r\nVALUE hk:term 0 3\r\nold\r\nEND\r\n",
                           b"CLIENT_ERROR bad data chunk\r\nEND\r\n")
            c.check(ok, "bad_terminators: set data ending %r" % end, "reply %r" % reply)
            reply = with_sentinel(conn, b"ms hk:term 3\r\n%s" % data)
            c.check(reply is not None and reply.startswith(b"CLIENT_ERROR bad data chunk"),
                    "bad_terminators: ms data ending %r" % end, "reply %r" % reply)
        big = BLOB[:300 * 1024]
        reply = with_sentinel(conn, b"set hk:term 0 0 %d\r\n%sXYget hk:term\r\n" %
                              (len(big), big), timeout=5)
        c.check(reply is not None and reply.startswith(b"CLIENT_ERROR bad data chunk\r\n") and
                big not in reply, "bad_terminators: 300 KiB value ending XY",
                "reply %r" % (reply or b"")[:120])


NOT_NUMBERS = [b"abc", b"1x", b"0x10", b"1.5", b"-", b"+", b"99999999999999999999999", b"\xff"]


def bad_numbers(ctx, server):
    c = ctx.c
    templates = [
        b"set hk:num X 0 1\r\nx\r\n", b"set hk:num 0 X 1\r\nx\r\n", b"set hk:num 0 0 X\r\nx\r\n",
        b"add hk:num X 0 1\r\nx\r\n", b"cas hk:cnt 0 0 1 X\r\nx\r\n", b"incr hk:cnt X\r\n",
        b"decr hk:cnt X\r\n", b"touch hk:cnt X\r\n", b"gat X hk:cnt\r\n", b"gats X hk:cnt\r\n",
        b"verbosity X\r\n", b"flush_all X\r\n", b"flush_all X noreply\r\n",
        b"mg hk:cnt TX v\r\n", b"mg hk:cnt NX v\r\n", b"mg hk:cnt RX v\r\n",
        b"ms hk:num X\r\nx\r\n", b"ms hk:num 1 TX\r\nx\r\n", b"ms hk:num 1 CX\r\nx\r\n",
        b"ms hk:num 1 NX MA\r\nx\r\n", b"md hk:cnt CX\r\n", b"md hk:cnt TX I\r\n",
        b"ma hk:cnt DX\r\n", b"ma hk:cnt JX N0\r\n", b"ma hk:cnt NX\r\n", b"ma hk:cnt TX\r\n",
        b"ma hk:cnt CX\r\n",
    ]
    with server.conn() as conn:
        c.equal(conn.set(b"hk:cnt", b"10"), b"STORED", "bad_numbers: set hk:cnt 10")
        for t in templates:
            for x in NOT_NUMBERS:
                req = t.replace(b"X", x)
                reply = with_sentinel(conn, req)
                quiet = b"noreply" in req and reply == b""
                c.check(reply is not None and (quiet or error_lines_only(reply)),
                        "bad_numbers: %r" % req, "reply %r" % reply)
        c.equal(conn.get(b"hk:num"), None, "bad_numbers: nothing stored under hk:num")
        c.equal(conn.get(b"hk:cnt"), b"10", "bad_numbers: hk:cnt unchanged")


def nul_bytes(ctx, server):
    c = ctx.c
    requests = [b"get ds:00001\x00junk\r\n", b"\x00\x00\x00\r\n", b"\x00get ds:00002\r\n",
                b"set hk:nul\x00x 0 0 1\r\nx\r\n", b"g\x00et ds:00003\r\n",
                b"get hk\x00:nul ds:00004\r\n", b"mg ds:00005\x00 v\r\n", b"gets \x00\r\n",
                b"incr hk:nul\x00 1\r\n", b"delete \x00ds:00006\r\n", b"ms hk:nul 1 \x00T\r\nx\r\n",
                b"\x00" * 1500 + b"\r\n", b"mg \x00\x00\x00 v\r\n"]
    with server.conn() as conn:
        for req in requests:
            reply = with_sentinel(conn, req)
            if reply is None:
                c.check(False, "nul_bytes: %r answered" % req[:40], "no reply to the sentinel")
                continue
            items, _, _ = parse_values(reply)
            c.check(not wrong_values(items), "nul_bytes: %r: values right" % req[:40],
                    "reply %r" % reply[:200])
        # Binary keys through meta base64, and values full of NULs.
        key = base64.b64encode(b"hk\x00nul\x00")
        reply = with_sentinel(conn, b"ms %s 3 b\r\na\x00c\r\nmg %s b v\r\n" % (key, key))
        c.check(reply in (b"HD\r\nVA 3\r\na\x00c\r\n", b"HD\r\nVA 3 b\r\na\x00c\r\n"),
                "nul_bytes: base64 key with NULs round-trips", "reply %r" % reply)
        value = bytes(range(256)) * 16
        c.equal(conn.set(b"hk:nulval", value), b"STORED", "nul_bytes: set a value with NULs")
        c.equal(conn.get(b"hk:nulval"), value, "nul_bytes: value with NULs round-trips")


def binary_statuses(reply):
    """The statuses of the binary response packets that make up `reply`, or None if it is not
    a whole number of them."""
    statuses = []
    while reply:
        if len(reply) < 24 or reply[0] != 0x81:
            return None
        body = int.from_bytes(reply[8:12], "big")
        if len(reply) < 24 + body:
            return None
        statuses.append(int.from_bytes(reply[6:8], "big"))
        reply = reply[24 + body:]
    return statuses


def binary_magic(ctx, server):
    c = ctx.c
    rng = random.Random(3)
    # Opcode 0xee: no binary command, so even memcached (which speaks the protocol) does nothing.
    header = b"\x80\xee" + rng.randbytes(22)
    streams = [b"\x80", b"\x80\xee\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff" + b"\x00" * 12,
               header + rng.randbytes(1 << 20), b"\x80" * 4096, b"\x80\r\n"]
    for data in streams:
        reply, sent, closed = exchange(server, data, timeout=3.0, idle=0.5)
        # The binary protocol (first byte 0x80): only binary error responses, or nothing while
        # a packet is incomplete; never a text line, never a success.
        statuses = binary_statuses(reply)
        c.check(statuses is not None and all(s != 0 for s in statuses),
                "binary_magic: %r...: binary error responses only" % data[:12],
                "closed %s, reply %r" % (closed, reply[:80]))
    c.check(server.alive(), "binary_magic: the server still runs")
    reply, _, closed = exchange(server, b"get ds:00007\r\n\x80\xee" + rng.randbytes(5000),
                                timeout=3.0, idle=0.5)
    items, _, _ = parse_values(reply)
    c.check(items == [(b"ds:00007", DATASET[b"ds:00007"])],
            "binary_magic: a get before 0x80 on a later line is answered",
            "reply %r" % reply[:120])


def http(ctx, server):
    c = ctx.c
    requests = [b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
                b"POST /set HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
                b"HEAD / HTTP/1.1\r\n\r\n", b"OPTIONS * HTTP/1.1\r\n\r\n",
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n"]
    for req in requests:
        reply, _, closed = exchange(server, req, timeout=3.0, idle=1.0)
        c.check(closed and not reply, "http: %r: closed, no reply" % req[:24],
                "closed %s, reply %r" % (closed, reply[:80]))
    hello = bytes.fromhex("16030100c4010000c00303") + random.Random(4).randbytes(190)
    reply, _, closed = exchange(server, hello, timeout=3.0, idle=0.5)
    c.note("http: TLS ClientHello: closed %s, reply %r" % (closed, reply[:40]))
    reply, _, closed = exchange(server, b"get / HTTP/1.1\r\n", timeout=3.0,
                                until=lambda got: got.endswith(b"END\r\n"))
    c.equal(reply, b"END\r\n", "http: lower-case 'get / HTTP/1.1' is a get of two keys")


META_LETTERS = b"bcfhklstvOquCDEFIJLMNPRSTXYZaxyz0129!~\xff"
META_TAILS = [b"", b"", b"", b"0", b"1", b"-1", b"10", b"abc", b"x" * 40, b"\xff\xfe",
              b"99999999999999999999999", b"E", b"S", b"A", b"P", b"R", b"I", b"D", b"+"]


def meta_line(rng):
    cmd = rng.choice([b"mg", b"mg", b"ms", b"ms", b"md", b"ma", b"mn", b"me"])
    key = rng.choice([b"hk:m0", b"hk:m1", b"hk:m2", b"aGs6bTM=", b"hk:m" + b"q" * 240,
                      b"\xff\xfe", b"-"])
    flags = [bytes([rng.choice(META_LETTERS)]) + rng.choice(META_TAILS)
             for _ in range(rng.choice([0, 1, 2, 3, 5, 10, 18, 25]))]
    if cmd == b"ms":
        # Printable: refused flags leave the data to be read as a command line (as memcached).
        data = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz :-0123456789")
                     for _ in range(rng.choice([0, 1, 10, 1000])))
        return b"ms %s %d %s\r\n%s\r\n" % (key, len(data), b" ".join(flags), data)
    return b" ".join([cmd, key] + flags) + b"\r\n"


def meta_garbage(ctx, server):
    c = ctx.c
    rng = random.Random(5)
    lost, closed, answered = [], [], 0
    conn = server.conn()
    try:
        for _ in range(3000):
            req = meta_line(rng)
            reply = with_sentinel(conn, req, timeout=2.0)
            if reply is None or reply == CLOSED:
                (lost if reply is None else closed).append(req[:100])
                conn.close()
                conn = server.conn()
                continue
            answered += 1
            if b"VA " in reply and b"ds:" in req:
                c.check(False, "meta_garbage: no data-set value", "%r -> %r" % (req, reply))
    finally:
        conn.close()
    c.note("meta_garbage: %d of 3000 answered before the sentinel, %d closed the connection%s" %
           (answered, len(closed), (", e.g. %r" % closed[0]) if closed else ""))
    c.check(not lost and not closed,
            "meta_garbage: every garbage meta command is answered, the connection kept",
            "%d lost, %d closed, e.g. %r" % (len(lost), len(closed), (lost + closed)[:3]))


def get_50k(ctx, server):
    keys = [ds_key(i // 25) if i % 25 == 0 else b"hk:miss:%d" % i for i in range(50000)]
    line = b"get " + b" ".join(keys) + b"\r\n"
    start = time.monotonic()
    reply, _, closed = exchange(server, line, timeout=20.0,
                                until=lambda got: got.endswith(b"END\r\n"))
    took = time.monotonic() - start
    items, ended, err = parse_values(reply)
    want = [(k, DATASET[k]) for k in keys if k in DATASET]
    ctx.c.check(ended and items == want, "get_50k: %d keys, %d values, all right" %
                (len(keys), len(want)),
                "ended %s, closed %s, %d values, wrong %s, err %r" %
                (ended, closed, len(items), wrong_values(items)[:5], err))
    ctx.c.note("get_50k: %.1f KB line, %.1f MB reply in %.2f s" %
               (len(line) / 1e3, len(reply) / 1e6, took))


def close_mid_value(ctx, server):
    c = ctx.c
    with server.conn() as conn:
        c.equal(conn.set(b"hk:half", b"old"), b"STORED", "close_mid_value: set hk:half old")
    with connect(server) as s:
        s.sendall(b"set hk:half 0 0 100000\r\n" + b"z" * 50000)
        time.sleep(0.05)
    socks = []
    for i in range(40):  # 40 clients each leave half of a 1 MB value behind
        s = connect(server)
        s.sendall(b"set hk:half%d 0 0 1000000\r\n" % i + BLOB[:500000])
        socks.append(s)
    for i in range(10):
        s = connect(server)
        s.sendall(b"ms hk:halfm%d 1000000 T0\r\n" % i + BLOB[:300000])
        socks.append(s)
    with connect(server) as s:
        s.sendall(b"set hk:half 0 0")  # mid-line
    with server.conn() as conn:
        c.equal(conn.set(b"hk:big", BLOB[:500 * 1024]), b"STORED", "close_mid_value: set hk:big")
    for _ in range(20):  # replies left unread
        with connect(server) as s:
            s.sendall(b"get hk:big\r\n" * 8)
    time.sleep(0.2)
    for s in socks:
        s.close()
    time.sleep(0.2)
    with server.conn() as conn:
        c.equal(conn.get(b"hk:half"), b"old", "close_mid_value: hk:half keeps its old value")
        stray = [i for i in range(40) if conn.get(b"hk:half%d" % i) is not None]
        c.check(not stray, "close_mid_value: half-sent values are not stored", repr(stray))


def slowloris(ctx, server):
    c = ctx.c
    msgs = []
    for i in range(300):
        kind = i % 3
        if kind == 0:
            msgs.append(b"get %s\r\n" % ds_key(i))
        elif kind == 1:
            msgs.append(b"set hk:sl%03d 0 0 4\r\nab%02d\r\n" % (i, i % 100))
        else:
            msgs.append(b"x" * 30)  # never completes a line
    socks = [connect(server, timeout=5) for _ in msgs]
    stop = threading.Event()
    latencies, failures = [], []

    def other_client():
        try:
            with server.conn(timeout=3) as conn:
                i = 0
                while not stop.is_set():
                    key, value = b"hk:other%d" % (i % 50), b"v%d" % i
                    t0 = time.monotonic()
                    ok = conn.set(key, value) == b"STORED" and conn.get(key) == value
                    latencies.append(time.monotonic() - t0)
                    if not ok:
                        failures.append("round trip %d: wrong reply" % i)
                    i += 1
                    stop.wait(0.02)
        except Exception as e:
            failures.append("%s: %s" % (type(e).__name__, e))

    t = threading.Thread(target=other_client, daemon=True)
    t.start()
    start = time.monotonic()
    send_errors = 0
    for pos in range(max(len(m) for m in msgs)):
        for s, m in zip(socks, msgs):
            if pos < len(m):
                try:
                    s.send(m[pos:pos + 1])
                except OSError:
                    send_errors += 1
        time.sleep(max(0.0, start + 0.1 * (pos + 1) - time.monotonic()))
    stop.set()
    t.join(5)
    wrong = []
    for i, (s, m) in enumerate(zip(socks, msgs)):
        if i % 3 == 2:
            continue
        want = (b"STORED\r\n" if i % 3 else
                b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (ds_key(i), len(DATASET[ds_key(i)]),
                                                     DATASET[ds_key(i)]))
        got = b""
        s.settimeout(3)
        try:
            while len(got) < len(want):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
        if got != want:
            wrong.append("%d: %r" % (i, got[:60]))
    for s in socks:
        s.close()
    c.note("slowloris: 300 connections for %.1f s; other client %d round trips, slowest %.3f s" %
           (time.monotonic() - start, len(latencies), max(latencies or [0])))
    c.check(not failures and latencies and max(latencies) < 1.0,
            "slowloris: the other client's round trips < 1 s",
            "failures %s, slowest %.3f s" % (failures[:3], max(latencies or [0])))
    c.check(not send_errors, "slowloris: trickling connections are kept", "%d send errors" %
            send_errors)
    c.check(not wrong, "slowloris: trickled requests answered correctly",
            "%d wrong: %s" % (len(wrong), wrong[:3]))


def unread_gets(ctx, server):
    c = ctx.c
    big = BLOB[100:100 + 500 * 1024]
    with server.conn() as conn:
        c.equal(conn.set(b"hk:big", big), b"STORED", "unread_gets: set 500 KiB hk:big")

    def dataset_hit(conn, i):
        return conn.get(ds_key(i % DATASET_KEYS)) == DATASET[ds_key(i % DATASET_KEYS)]

    with harness.UnreadFlood(server, b"get hk:big\r\n") as flood:
        latencies, failures = harness.round_trips(
            server, 4.0, lambda i: (b"hk:unread%d" % i, BLOB[i:i + 1000]), also=dataset_hit)
    c.note("unread_gets: pipelined %.1f MB of gets (%d send stalls); other client %d round "
           "trips, slowest %.3f s" % (flood.sent / 1e6, flood.stalls, len(latencies),
                                      max(latencies or [0])))
    c.check(not failures and latencies and max(latencies) < 1.0,
            "unread_gets: another client served, round trips < 1 s",
            "failures %s, slowest %.3f s" % (failures[:3], max(latencies or [0])))


def classify(s):
    """What one new connection got when it asked for the version."""
    try:
        s.sendall(b"version\r\n")
    except OSError:
        return "closed"
    reply, _, closed = pump(s, b"", timeout=2.0, until=lambda got: got.endswith(b"\r\n"))
    if reply.startswith(b"VERSION"):
        return "accepted"
    if reply == TOO_MANY:
        return "refused"
    if closed and not reply:
        return "closed"
    return "other: %r (closed %s)" % (reply[:60], closed)


def too_many_conns(ctx, server):
    c = ctx.c
    rounds = []
    for r in range(2):
        socks, kinds = [], {}
        for _ in range(CONN_LIMIT * 2):
            try:
                s = connect(server, timeout=2)
            except OSError:
                kinds["connect failed"] = kinds.get("connect failed", 0) + 1
                continue
            socks.append(s)
            kind = classify(s)
            kinds[kind] = kinds.get(kind, 0) + 1
        for s in socks:
            s.close()
        rounds.append(kinds)
        c.note("too_many_conns: round %d of %d connections: %s" %
               (r + 1, CONN_LIMIT * 2, kinds))
        accepted = kinds.get("accepted", 0)
        c.check(0 < accepted <= CONN_LIMIT, "too_many_conns: 0 < accepted <= -c %d" % CONN_LIMIT,
                repr(kinds))
        odd = {k: v for k, v in kinds.items() if k not in ("accepted", "refused", "closed")}
        c.check(not odd, "too_many_conns: extra connections refused or closed", repr(odd))
        served(ctx, server, "too_many_conns round %d" % (r + 1))
    c.equal(rounds[1].get("accepted"), rounds[0].get("accepted"),
            "too_many_conns: every slot is free again after the clients left")


HALF_LIMIT_MIB = 64
HOLDERS = 250
HALF_SIZE = 1000 * 1000


def send_round_robin(pending, deadline):
    """Sends each socket's bytes ({sock: bytes}) without blocking on any one of them; returns
    the sockets whose bytes were not all sent by `deadline` and those that failed."""
    left = {s: memoryview(d) for s, d in pending.items()}
    failed = []
    for s in left:
        s.setblocking(False)
    while left and time.monotonic() < deadline:
        _, writable, _ = select.select([], list(left), [], 0.05)
        for s in writable:
            try:
                n = s.send(left[s][:256 << 10])
            except BlockingIOError:
                continue
            except OSError:
                failed.append(s)
                del left[s]
                continue
            left[s] = left[s][n:]
            if not len(left[s]):
                del left[s]
    return list(left), failed


def collect_replies(socks, deadline):
    """{sock: first reply line, b"<closed>", or None (nothing by `deadline`)}."""
    got = {s: b"" for s in socks}
    done = {}
    while len(done) < len(socks) and time.monotonic() < deadline:
        waiting = [s for s in socks if s not in done]
        readable, _, _ = select.select(waiting, [], [], 0.05)
        for s in readable:
            try:
                chunk = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                done[s] = got[s] or CLOSED
            else:
                got[s] += chunk
                if got[s].endswith(b"\r\n"):
                    done[s] = got[s]
    return {s: done.get(s) for s in socks}


def timed_reply(conn, request):
    """(reply line or a description of the failure, seconds) for one request on `conn`."""
    t0 = time.monotonic()
    try:
        reply = conn.call(request, timeout=1.0)
    except harness.Timeout:
        reply = b"<no reply within 1 s>"
    except (harness.Closed, OSError):
        reply = CLOSED
    return reply, time.monotonic() - t0


def half_values(ctx, server):
    c = ctx.c
    oom = b"SERVER_ERROR out of memory storing object\r\n"
    other = server.conn(timeout=1.0)  # connected before memory fills up
    holders = []
    for j in range(HOLDERS):
        try:
            holders.append(connect(server, timeout=1.0))
        except OSError:
            pass
    heads = {s: b"set hk:hv%d 0 0 %d\r\n" % (j, HALF_SIZE) + BLOB[:HALF_SIZE - 1000]
             for j, s in enumerate(holders)}
    unsent, failed = send_round_robin(heads, time.monotonic() + 5.0)
    time.sleep(0.3)
    reply, took = timed_reply(other, b"set hk:hvx 0 0 1\r\ny\r\n")
    c.note("half_values: %d holders, %d stalled, %d refused; another client's set: %r in %.2f s"
           % (len(holders), len(unsent), len(failed), reply, took))
    c.check(reply in (b"STORED\r\n", oom), "half_values: another client's set is answered",
            "%r after %.2f s" % (reply, took))
    live = [s for s in holders if s not in failed]
    tails = {s: (BLOB[:1000] + b"\r\n") for s in live if s not in unsent}
    send_round_robin(tails, time.monotonic() + 2.0)
    t0 = time.monotonic()
    replies = collect_replies(live, t0 + 5.0)
    c.note("half_values: the last holder's reply came %.2f s after the tails" % (time.monotonic() - t0))
    kinds = {}
    for r in replies.values():
        kind = r if r is None or r == CLOSED else r.split(b"\r\n")[0][:45]
        kinds[kind] = kinds.get(kind, 0) + 1
    c.note("half_values: holders' replies within 5 s of their last byte: %s" % kinds)
    c.check(kinds.get(None, 0) == 0, "half_values: every holder answered (or closed) within 5 s",
            "%d without a reply: %s" % (kinds.get(None, 0), kinds))
    reply, took = timed_reply(other, b"version\r\n")
    c.check(reply.startswith(b"VERSION"), "half_values: another client answered after that",
            "%r after %.2f s" % (reply, took))
    other.close()
    for s in holders:
        s.close()


CASES = [("random_bytes", random_bytes), ("long_lines", long_lines), ("key_251", key_251),
         ("bad_lengths", bad_lengths), ("bad_terminators", bad_terminators),
         ("bad_numbers", bad_numbers), ("nul_bytes", nul_bytes), ("binary_magic", binary_magic),
         ("http", http), ("meta_garbage", meta_garbage), ("get_50k", get_50k),
         ("close_mid_value", close_mid_value), ("slowloris", slowloris),
         ("unread_gets", unread_gets)]


def stops_cleanly(ctx, server, what):
    """SIGTERM: exit status 0 within 5 s. Sanitizer builds report leaks and late errors here."""
    if ctx.memcached or not server.alive():
        return
    code = server.stop()
    ctx.c.check(code == 0, "%s: the server exits 0 on SIGTERM" % what,
                "exit status %s; log:\n%s" % (code, server.log()[-3000:]))


def main(args):
    c = harness.Checker(args.verbose)
    ctx = None
    only = set(args.case or [])
    # CINCH_HOSTILE_SKIP=a,b: cases to leave out (like --skip), for a run by hand or a CI leg.
    skip = set(args.skip or []) | set(filter(None, os.environ.get("CINCH_HOSTILE_SKIP", "").split(",")))
    with harness.Server(args.server, SERVER_ARGS) as server:
        ctx = Context(c, args, server)
        if not ctx.rss:
            c.note("RSS checks off (%s)" % ("memcached" if ctx.memcached else
                                            "--no-rss" if args.no_rss else "CINCH_SANITIZE"))
        write_dataset(server)
        problems = dataset_problems(server)
        c.check(not problems, "data set written and verified", "; ".join(problems[:5]))
        for name, fn in CASES:
            if name in skip:
                print("case %-16s skipped (--skip / CINCH_HOSTILE_SKIP)" % name)
                continue
            if only and name not in only:
                continue
            if not run_case(ctx, name, fn):
                break  # the server died: the remaining cases would only repeat that
        stops_cleanly(ctx, server, "main server")
    if (not only or "too_many_conns" in only) and "too_many_conns" not in skip:
        with harness.Server(args.server, SERVER_ARGS + ["-c", str(CONN_LIMIT)]) as server:
            write_dataset(server)
            ctx.server = server
            run_case(ctx, "too_many_conns", too_many_conns, server)
            stops_cleanly(ctx, server, "too_many_conns")
    if "half_values" in skip:
        print("case half_values      skipped (--skip / CINCH_HOSTILE_SKIP)")
    if (not only or "half_values" in only) and "half_values" not in skip:
        with harness.Server(args.server, ["-m", str(HALF_LIMIT_MIB), "-t", "2"]) as server:
            ctx.dataset = SMALL_DATASET
            write_dataset(server, ctx.dataset)
            ctx.server = server
            run_case(ctx, "half_values", half_values, server, HALF_LIMIT_MIB)
            stops_cleanly(ctx, server, "half_values")
    failed = [name for name, ok in ctx.results if not ok]
    print("cases: %d ok, %d failed%s" % (len(ctx.results) - len(failed), len(failed),
                                         (": " + ", ".join(failed)) if failed else ""))
    return c.finish()


def extra_args(p):
    p.add_argument("--no-rss", action="store_true", help="skip the RSS <= -m checks")
    p.add_argument("--case", action="append", help="run only this case (repeatable)")
    p.add_argument("--skip", action="append", help="skip this case (repeatable)")


if __name__ == "__main__":
    slow = bool(os.environ.get("CINCH_SANITIZE"))
    harness.run(main, harness.parse_args(__doc__, extra_args), time_limit=170 if slow else 58)
