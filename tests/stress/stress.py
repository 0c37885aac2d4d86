#!/usr/bin/env python3
"""Long-running verified stress test: many clients, every command, every value checked.

    python3 tests/stress/stress.py --server build/release/tools/cinchd [--seconds 60]
        [--threads 8] [--memory 64] [--seed 1] [--no-rss]

The server runs with -m MEMORY (default 64 MiB) -t 2 and a key space several times larger, so
it evicts and compacts all the time; some writes carry real 1-3 s TTLs; client 0 sends
flush_all every ~8 s. Each client is a process (the GIL would serialise threads) with its own
connection, sending pipelined batches of up to 8 mixed commands: set add replace append
prepend cas get gets gat gats touch delete incr decr mg ms md ma, values 10 B .. 200 KiB
(log-uniform, skewed small; values never go below their ~30-byte header).

Values describe themselves: one or more records `{key writer version length crc32}payload`
(append/prepend add records), payload a window of a shared random blob, the CRC over header
fields and payload. Any value returned must parse and carry the requested key and right CRCs.

Keys come in three kinds:
  o<client>:<n>  owned by one client, which keeps a model of each: the records it must hold,
                 its client flags, its TTL, when it was last written, a CAS token. Only
                 eviction, expiry and flush_all remove things behind the owner's back, so a
                 returned value must be exactly the latest version: never an older one, never
                 one seen deleted or missing, never one written before a completed flush_all
                 (a flush epoch: flush_started/flush_done counters shared by the clients), never
                 one whose TTL ran out more than 2.5 s ago. Replies that reveal presence
                 (add NOT_STORED, TOUCHED, DELETED, EXISTS...) are held to the same rules; a
                 cas with a fresh token must not be EXISTS, with a stale one never STORED.
  n<client>:<n>  counters owned by one client: incr/decr/ma results must equal the model.
  s:<n>          shared by all clients: checked standalone (parse, key, CRC).

RSS of the server is sampled every 50 ms and must stay <= -m (not with --no-rss, for
memcached, or when the environment variable CINCH_SANITIZE is set). At the end each client
re-reads all its keys; the summary gives operations, values verified, errors (must be 0),
evictions (server stats) and peak RSS against -m. Exit status 1 on any error.
"""

import math
import multiprocessing as mp
import os
import random
import select
import socket
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
import harness  # noqa: E402

BLOB = random.Random(424242).randbytes(1 << 20)
MAX_VALUE = 200 * 1024
MEAN_VALUE = 10 * 1024       # roughly, for the size mix below
KEYSPACE_FACTOR = 4          # the key space holds about this many times -m
BATCH = 8
BATCH_BYTES = 512 << 10
TTL_MARGIN = 2.5             # an item must be gone this long after its TTL ran out
FLUSH_EVERY = 8.0
READ_TIMEOUT = 10.0
MAX_ERRORS_KEPT = 30
U64 = 1 << 64


# ----------------------------------------------------------------------------- values


def value_size(rng):
    r = rng.random()
    lo, hi = (10, 1000) if r < 0.6 else (1000, 20000) if r < 0.9 else (20000, MAX_VALUE)
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def record(key, writer, version, size):
    """One self-describing record of about `size` bytes (never less than its header)."""
    plen = max(0, size - len(key) - 30)
    fields = b"%s %d %d %d" % (key, writer, version, plen)
    off = zlib.crc32(fields) % (len(BLOB) - plen)
    payload = BLOB[off:off + plen]
    return b"{%s %08x}%s" % (fields, zlib.crc32(payload, zlib.crc32(fields)), payload)


def parse_value(key, data):
    """[(writer, version, length)] of a value, or raises ValueError saying what is wrong."""
    out, pos = [], 0
    if not data:
        raise ValueError("empty value")
    while pos < len(data):
        if data[pos:pos + 1] != b"{":
            raise ValueError("no record at byte %d" % pos)
        end = data.find(b"}", pos)
        if end < 0:
            raise ValueError("record header at byte %d not closed" % pos)
        parts = data[pos + 1:end].split(b" ")
        if len(parts) != 5:
            raise ValueError("bad record header %r" % data[pos:end + 1][:80])
        rkey, writer, version, plen, crc = parts
        if rkey != key:
            raise ValueError("record of key %r in the value of %r" % (rkey[:60], key))
        plen = int(plen)
        payload = data[end + 1:end + 1 + plen]
        if len(payload) != plen:
            raise ValueError("record at byte %d truncated" % pos)
        fields = b" ".join(parts[:4])
        if zlib.crc32(payload, zlib.crc32(fields)) != int(crc, 16):
            raise ValueError("CRC mismatch in record %r" % fields)
        out.append((int(writer), int(version), plen))
        pos = end + 1 + plen
    return out


# ----------------------------------------------------------------------------- connection


class Failure(Exception):
    """The connection broke or stalled: the client stops (counted as an error)."""


class Wire:
    """A non-blocking socket with a receive buffer; sends while draining replies."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.pos = 0

    def _recv(self, wait):
        r, _, _ = select.select([self.sock], [], [], wait)
        if not r:
            raise Failure("no reply within %.0f s" % wait)
        self._recv_ready()

    def _recv_ready(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError as e:
            raise Failure("recv: %s" % e)
        if not data:
            raise Failure("server closed the connection")
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += data

    def send(self, data):
        view, sent = memoryview(data), 0
        deadline = time.monotonic() + READ_TIMEOUT
        while sent < len(data):
            r, w, _ = select.select([self.sock], [self.sock], [], 1.0)
            if r:
                self._recv_ready()
            if w:
                try:
                    sent += self.sock.send(view[sent:sent + (1 << 20)])
                except BlockingIOError:
                    pass
                except OSError as e:
                    raise Failure("send: %s" % e)
            if time.monotonic() > deadline:
                raise Failure("could not send for %.0f s" % READ_TIMEOUT)

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                out = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return out
            self._recv(READ_TIMEOUT)

    def exact(self, n):
        while len(self.buf) - self.pos < n:
            self._recv(READ_TIMEOUT)
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def data_block(self, n):
        out = self.exact(n + 2)
        if out[-2:] != b"\r\n":
            raise Failure("data block of %d bytes not followed by CRLF" % n)
        return out[:-2]

    def close(self):
        self.sock.close()


# ----------------------------------------------------------------------------- the model


class Entry:
    """What the owner knows of one of its keys.

    Absent (records and number None): the key must not be found until the owner writes it.
    Present: it holds exactly `records` (or counter `number`), or was evicted, expired or
    flushed. Unknown (after an error was already recorded): judged standalone until the next
    read or write settles it, so that one fault is not reported over and over.
    """

    __slots__ = ("records", "number", "flags", "ttl", "expires_by", "flush_seen", "cas",
                 "cas_unknown", "stale_cas", "pending", "unknown")

    def __init__(self):
        self.records = None       # [(writer, version, payload length)]
        self.number = None        # counters
        self.flags = 0
        self.ttl = 0
        self.expires_by = None    # monotonic time after which the item must be gone
        self.flush_seen = 0       # flush_started, read after the last write's reply
        self.cas = None           # a CAS token of the current version
        self.cas_unknown = None   # a token from before a touch (which may or may not change it)
        self.stale_cas = None     # a token of an earlier version
        self.pending = False      # written in the current batch: times fixed at its end
        self.unknown = False

    @property
    def present(self):
        return self.records is not None or self.number is not None

    def new_version(self):
        """A write replaced the value: every token seen so far is stale."""
        self.stale_cas = self.cas or self.cas_unknown or self.stale_cas
        self.cas = self.cas_unknown = None
        self.unknown = False

    def ttl_restarted(self):
        self.cas_unknown = self.cas or self.cas_unknown
        self.cas = None

    def forget(self):
        self.new_version()
        self.records = self.number = None
        self.expires_by = None
        self.pending = False


class Shared:
    def __init__(self, n):
        self.flush_started = mp.Value("q", 0, lock=False)
        self.flush_done = mp.Value("q", 0, lock=False)
        self.stop = mp.Event()
        self.ops = mp.Array("q", n, lock=False)


class Client:
    """One stress client (runs in its own process)."""

    def __init__(self, index, port, shared, own_keys, shared_keys, counters, seed):
        self.index, self.port, self.shared = index, port, shared
        self.rng = random.Random(seed * 1000 + index)
        self.own = [b"o%d:%d" % (index, n) for n in range(own_keys)]
        self.shared_keys = [b"s:%d" % n for n in range(shared_keys)]
        self.counters = [b"n%d:%d" % (index, n) for n in range(counters)]
        self.model = {k: Entry() for k in self.own + self.counters}
        self.version = 0
        self.stats = {"ops": 0, "verified": 0, "errors": 0, "hits": 0, "misses": 0,
                      "oom": 0, "flushes": 0, "past_ttl": 0, "past_flush": 0}
        self.errors = []
        self.written = []       # entries written in this batch (times fixed at batch end)
        self.touched = []       # entries whose TTL restarted in this batch
        self.batch_start = 0.0
        self.flush_done_at_send = 0
        self.next_flush = time.monotonic() + FLUSH_EVERY

    # -- bookkeeping

    def error(self, text):
        self.stats["errors"] += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append("client %d: %s" % (self.index, text))

    def next_version(self):
        self.version += 1
        return self.version

    def pick(self, keys):
        # Half the picks go to the first tenth of the keys: hot keys get re-read while present.
        if self.rng.random() < 0.5:
            return keys[self.rng.randrange(max(1, len(keys) // 10))]
        return self.rng.choice(keys)

    def ttl(self):
        r = self.rng.random()
        return 0 if r < 0.75 else self.rng.randint(1, 3) if r < 0.95 else 100

    def wrote(self, e, ttl=None):
        """`e` was written (or touched, with ttl) in this batch."""
        if ttl is not None:
            e.ttl = ttl
        e.pending = True
        self.written.append(e)

    def touch(self, e, ttl):
        """`e`'s TTL restarted (touch, gat, mg T); its write time (for flush_all) did not."""
        e.ttl = ttl
        e.expires_by = None  # not judged until the batch ends
        e.ttl_restarted()
        self.touched.append(e)

    def finish_batch(self):
        now = time.monotonic()
        flush_started = self.shared.flush_started.value
        for e in self.written:
            if e.pending:
                e.pending = False
                e.flush_seen = flush_started
        for e in self.written + self.touched:
            e.expires_by = now + e.ttl + TTL_MARGIN if e.ttl and e.present else None
        self.written, self.touched = [], []

    def may_be_present(self, key, e, what):
        """The server says `key` is present: allowed by the model? Records an error if not."""
        if e.unknown or e.pending:
            return True
        if not e.present:
            self.error("%s: %r is present, but was seen absent or deleted" % (what, key))
            e.unknown = True
            return False
        if self.flush_done_at_send > e.flush_seen:
            self.error("%s: %r survived a flush_all that completed after it was written" %
                       (what, key))
            e.unknown = True
            return False
        if e.expires_by is not None and self.batch_start > e.expires_by:
            self.error("%s: %r present %.1f s after its %d s TTL ran out" %
                       (what, key, self.batch_start - e.expires_by + TTL_MARGIN, e.ttl))
            e.unknown = True
            return False
        return True

    def check_value(self, key, data, flags, what):
        """Verifies a returned value: standalone, then against the owner's model."""
        self.stats["hits"] += 1
        try:
            records = parse_value(key, data)
        except ValueError as exc:
            self.error("%s %r: %s" % (what, key, exc))
            return
        self.stats["verified"] += 1
        e = self.model.get(key)
        if e is None:
            return
        self.count_probes(e)
        if self.may_be_present(key, e, what) and not e.unknown:
            if records != e.records:
                self.error("%s %r: holds versions %s, the latest written is %s" %
                           (what, key, records[:4], (e.records or [])[:4]))
            elif flags is not None and flags != e.flags:
                self.error("%s %r: flags %d, want %d" % (what, key, flags, e.flags))
            else:
                return
        # Settle the model on what the server holds, so that one fault is reported once.
        e.records, e.number, e.unknown = records, None, False
        if flags is not None:
            e.flags = flags

    def check_number(self, key, got, want, what):
        e = self.model[key]
        self.stats["verified"] += 1
        if got != want and not e.unknown:
            self.error("%s %r: %d, want %d" % (what, key, got, want))
        e.number, e.unknown = got, False

    def miss(self, key):
        self.stats["misses"] += 1
        e = self.model.get(key)
        if e is not None:
            self.count_probes(e)
            e.forget()

    def count_probes(self, e):
        """Counts reads of present keys that the TTL and flush rules require to be gone."""
        if e.present and not e.pending and not e.unknown:
            if e.expires_by is not None and self.batch_start > e.expires_by:
                self.stats["past_ttl"] += 1
            if self.flush_done_at_send > e.flush_seen:
                self.stats["past_flush"] += 1

    # -- reply readers

    def read_values(self, wire, keys, what, cas=False):
        """VALUE lines then END for `keys` (each at most once, in order)."""
        got = {}
        while True:
            line = wire.line()
            if line == b"END":
                break
            parts = line.split(b" ")
            if parts[0] != b"VALUE" or len(parts) != (5 if cas else 4):
                raise Failure("%s: unexpected line %r" % (what, line[:100]))
            data = wire.data_block(int(parts[3]))
            got[parts[1]] = (data, int(parts[2]), int(parts[4]) if cas else None)
        for key in keys:
            if key in got:
                data, flags, token = got.pop(key)
                self.check_value(key, data, flags, what)
                e = self.model.get(key)
                if token is not None and e is not None and e.present:
                    e.cas, e.cas_unknown = token, None
            else:
                self.miss(key)
        if got:
            self.error("%s: values for keys not asked for: %r" % (what, list(got)[:3]))

    def store_reply(self, wire, what, key, on_stored, on_other=None):
        line = wire.line()
        if line.startswith(b"SERVER_ERROR"):
            self.oom(what, key, line)
        elif line in (b"STORED", b"NOT_STORED", b"EXISTS", b"NOT_FOUND", b"HD", b"NS", b"EX",
                      b"NF"):
            stored = line in (b"STORED", b"HD")
            if stored:
                on_stored()
            elif on_other:
                on_other(line)
        else:
            raise Failure("%s %r: unexpected reply %r" % (what, key, line[:100]))

    def oom(self, what, key, line):
        self.stats["oom"] += 1
        self.error("%s %r: %r" % (what, key, line[:80]))

    # -- operations on owned keys: each returns (request bytes, reply handler)

    def new_records(self, key, size=None):
        version = self.next_version()
        size = value_size(self.rng) if size is None else size
        return [(self.index, version, max(0, size - len(key) - 30))], record(
            key, self.index, version, size)

    def op_store(self, key, cmd):
        e = self.model[key]
        recs, data = self.new_records(key)
        flags, ttl = self.rng.randrange(1 << 16), self.ttl()
        req = b"%s %s %d %d %d\r\n%s\r\n" % (cmd, key, flags, ttl, len(data), data)

        def stored():
            if cmd == b"replace":
                self.may_be_present(key, e, cmd.decode())
            self.set_entry(e, recs, flags, ttl)

        def other(line):
            if cmd == b"add" and line == b"NOT_STORED":
                self.may_be_present(key, e, "add NOT_STORED")
            elif cmd == b"replace" and line == b"NOT_STORED":
                e.forget()
            else:
                self.error("%s %r: %r" % (cmd.decode(), key, line))

        return req, lambda w: self.store_reply(w, cmd.decode(), key, stored, other)

    def set_entry(self, e, recs, flags, ttl):
        e.records, e.number, e.flags = recs, None, flags
        e.new_version()
        self.wrote(e, ttl)

    def op_concat(self, key, cmd):
        e = self.model[key]
        if e.records and sum(r[2] + 40 for r in e.records) > MAX_VALUE - 2000:
            return self.op_store(key, b"set")
        version = self.next_version()
        size = value_size(self.rng) if self.rng.random() < 0.2 else self.rng.randint(30, 300)
        size = min(size, 2000)
        data = record(key, self.index, version, size)
        rec = (self.index, version, max(0, size - len(key) - 30))
        req = b"%s %s 0 0 %d\r\n%s\r\n" % (cmd, key, len(data), data)

        def stored():
            known = self.may_be_present(key, e, cmd.decode()) and not e.unknown
            if known:
                e.records = e.records + [rec] if cmd == b"append" else [rec] + e.records
            e.new_version()
            e.unknown = not known
            if not known:
                e.records = e.records or []
            self.wrote(e)

        def other(line):
            if line != b"NOT_STORED":
                self.error("%s %r: %r" % (cmd.decode(), key, line))
            e.forget()

        return req, lambda w: self.store_reply(w, cmd.decode(), key, stored, other)

    def op_get(self, key, cmd):
        if cmd in (b"gat", b"gats"):
            ttl = self.ttl()
            req = b"%s %d %s\r\n" % (cmd, ttl, key)
        else:
            req = b"%s %s\r\n" % (cmd, key)
        e = self.model[key]

        def handle(w):
            self.read_values(w, [key], cmd.decode(), cas=cmd in (b"gets", b"gats"))
            if cmd in (b"gat", b"gats") and e.present:
                token = e.cas
                self.touch(e, ttl)
                if cmd == b"gats":  # the token gats returns is the one after its touch
                    e.cas, e.cas_unknown = token, None

        return req, handle

    def op_multiget(self, keys):
        keys = list(dict.fromkeys(keys))
        return b"get " + b" ".join(keys) + b"\r\n", lambda w: self.read_values(w, keys, "get*")

    def op_touch(self, key):
        e, ttl = self.model[key], self.ttl()

        def handle(w):
            line = w.line()
            if line == b"TOUCHED":
                self.may_be_present(key, e, "touch")
                self.touch(e, ttl)
            elif line == b"NOT_FOUND":
                self.miss(key)
            else:
                raise Failure("touch %r: %r" % (key, line))

        return b"touch %s %d\r\n" % (key, ttl), handle

    def op_delete(self, key, meta=False):
        e = self.model[key]

        def handle(w):
            line = w.line()
            if line in (b"DELETED", b"HD"):
                self.may_be_present(key, e, "delete")
                e.forget()
            elif line in (b"NOT_FOUND", b"NF"):
                e.forget()
            else:
                raise Failure("delete %r: %r" % (key, line))

        return (b"md %s\r\n" % key) if meta else (b"delete %s\r\n" % key), handle

    def op_cas(self, key):
        e = self.model[key]
        if e.cas is None:
            return self.op_get(key, b"gets")
        token = e.cas if self.rng.random() < 0.8 or e.stale_cas is None else e.stale_cas
        recs, data = self.new_records(key)
        flags, ttl = self.rng.randrange(1 << 16), self.ttl()
        req = b"cas %s %d %d %d %d\r\n%s\r\n" % (key, flags, ttl, len(data), token, data)

        # Judged when the reply is read: an earlier command of the batch may have made a
        # current token stale.
        def stored():
            if token == e.stale_cas and token != e.cas and not e.unknown:
                self.error("cas %r with a stale token was STORED" % key)
            self.may_be_present(key, e, "cas")
            self.set_entry(e, recs, flags, ttl)

        def other(line):
            if line == b"EXISTS":
                if token == e.cas and not e.unknown:
                    self.error("cas %r with the token of the current version: EXISTS" % key)
                self.may_be_present(key, e, "cas EXISTS")
            elif line == b"NOT_FOUND":
                e.forget()
            else:
                self.error("cas %r: %r" % (key, line))

        return req, lambda w: self.store_reply(w, "cas", key, stored, other)

    def op_mg(self, key):
        e = self.model[key]
        ttl = self.ttl() if self.rng.random() < 0.2 else None
        req = b"mg %s v f c t k s%s\r\n" % (key, b" T%d" % ttl if ttl is not None else b"")

        def handle(w):
            line = w.line()
            if line == b"EN" or line.startswith(b"EN "):
                self.miss(key)
                return
            parts = line.split(b" ")
            if parts[0] != b"VA":
                raise Failure("mg %r: %r" % (key, line[:100]))
            data = w.data_block(int(parts[1]))
            flags = {p[:1]: p[1:] for p in parts[2:]}
            if flags.get(b"k") != key or int(flags.get(b"s", -1)) != len(data):
                self.error("mg %r: key/size flags %r for %d bytes" % (key, line[:100], len(data)))
            present_before = e.present
            self.check_value(key, data, int(flags.get(b"f", 0)), "mg")
            remaining = int(flags.get(b"t", -2))
            if present_before and not e.pending and ttl is None:
                if (e.ttl == 0) != (remaining == -1):
                    self.error("mg %r: t%d but the TTL is %d" % (key, remaining, e.ttl))
            if e.present:
                if ttl is not None:
                    self.touch(e, ttl)
                if b"c" in flags:
                    e.cas, e.cas_unknown = int(flags[b"c"]), None

        return req, handle

    def op_ms(self, key):
        e = self.model[key]
        mode = self.rng.choice([b"S", b"S", b"S", b"E", b"R", b"A", b"P"])
        if mode in (b"A", b"P"):
            return self.op_concat(key, b"append" if mode == b"A" else b"prepend")
        recs, data = self.new_records(key)
        flags, ttl = self.rng.randrange(1 << 16), self.ttl()
        req = b"ms %s %d T%d F%d M%s\r\n%s\r\n" % (key, len(data), ttl, flags, mode, data)

        def stored():
            if mode == b"R":
                self.may_be_present(key, e, "ms MR")
            self.set_entry(e, recs, flags, ttl)

        def other(line):
            if mode == b"E" and line == b"NS":
                self.may_be_present(key, e, "ms ME NS")
            elif mode == b"R" and line == b"NS":
                e.forget()
            else:
                self.error("ms M%s %r: %r" % (mode.decode(), key, line))

        return req, lambda w: self.store_reply(w, "ms", key, stored, other)

    # -- counters

    def op_counter(self, key):
        e = self.model[key]
        r = self.rng.random()
        if not e.present or r < 0.1:
            start = self.rng.randrange(1 << 20)
            ttl = self.ttl()
            req = b"set %s 0 %d %d\r\n%d\r\n" % (key, ttl, len(b"%d" % start), start)

            def stored():
                e.records, e.number = None, start
                e.new_version()
                self.wrote(e, ttl)

            return req, lambda w: self.store_reply(w, "set counter", key, stored)
        delta = self.rng.choice([1, 7, 1000, 1 << 40, (1 << 64) - 3])
        if r < 0.45:
            return self.counter_text(key, e, b"incr", delta)
        if r < 0.8:
            return self.counter_text(key, e, b"decr", delta % 5000)
        return self.counter_meta(key, e, delta % 100000)

    def counter_text(self, key, e, cmd, delta):
        def handle(w):
            line = w.line()
            if line == b"NOT_FOUND":
                e.forget()
            elif line.isdigit():
                if self.may_be_present(key, e, cmd.decode()) and e.number is not None:
                    old = e.number
                    want = (old + delta) % U64 if cmd == b"incr" else max(0, old - delta)
                    self.check_number(key, int(line), want, cmd.decode())
                e.number = int(line)
                e.new_version()
                self.wrote(e)
            else:
                raise Failure("%s %r: %r" % (cmd.decode(), key, line[:100]))

        return b"%s %s %d\r\n" % (cmd, key, delta), handle

    def counter_meta(self, key, e, delta):
        initial = self.rng.randrange(1000)
        decr = self.rng.random() < 0.3
        req = b"ma %s N0 J%d D%d%s v\r\n" % (key, initial, delta, b" MD" if decr else b"")

        def handle(w):
            line = w.line()
            parts = line.split(b" ")
            if parts[0] != b"VA":
                raise Failure("ma %r: %r" % (key, line[:100]))
            got = int(w.data_block(int(parts[1])))
            self.stats["verified"] += 1
            vivified = got == initial
            if e.unknown:
                pass
            elif e.number is not None:
                old = e.number
                want = max(0, old - delta) if decr else (old + delta) % U64
                if got == want:
                    vivified = False
                    self.may_be_present(key, e, "ma")
                elif got != initial:
                    self.error("ma %r: %d, want %d (or %d if evicted)" %
                               (key, got, want, initial))
            elif got != initial:
                self.error("ma %r on a missing key: %d, want the initial %d" %
                           (key, got, initial))
            e.records, e.number = None, got
            e.new_version()
            self.wrote(e, 0 if vivified else None)

        return req, handle

    # -- shared keys: standalone checks only

    def op_shared(self):
        key = self.pick(self.shared_keys)
        r = self.rng.random()
        if r < 0.35:
            _, data = self.new_records(key)
            req = b"set %s 0 %d %d\r\n%s\r\n" % (key, self.ttl(), len(data), data)
            return req, lambda w: self.store_reply(w, "set shared", key, lambda: None)
        if r < 0.5:
            cmd = self.rng.choice([b"append", b"prepend"])
            data = record(key, self.index, self.next_version(), self.rng.randint(30, 1000))
            req = b"%s %s 0 0 %d\r\n%s\r\n" % (cmd, key, len(data), data)

            def handle(w):
                line = w.line()  # a value grown past the item size limit may be refused
                if line not in (b"STORED", b"NOT_STORED") and not line.startswith(
                        b"SERVER_ERROR"):
                    raise Failure("%s shared %r: %r" % (cmd.decode(), key, line))

            return req, handle
        if r < 0.85:
            cmd = self.rng.choice([b"get", b"gets", b"mg"])
            if cmd == b"mg":
                return b"mg %s v k\r\n" % key, lambda w: self.shared_mg(w, key)
            return b"%s %s\r\n" % (cmd, key), lambda w: self.read_values(
                w, [key], "shared " + cmd.decode(), cas=cmd == b"gets")
        return b"delete %s\r\n" % key, lambda w: self.expect(w, (b"DELETED", b"NOT_FOUND"))

    def shared_mg(self, w, key):
        line = w.line()
        if line == b"EN" or line.startswith(b"EN "):
            self.stats["misses"] += 1
            return
        parts = line.split(b" ")
        if parts[0] != b"VA":
            raise Failure("mg shared %r: %r" % (key, line[:100]))
        self.check_value(key, w.data_block(int(parts[1])), None, "mg shared")

    def expect(self, w, allowed):
        line = w.line()
        if line not in allowed:
            raise Failure("expected one of %r, got %r" % (allowed, line[:100]))

    # -- the loop

    def choose(self):
        r = self.rng.random()
        if r < 0.12:
            return self.op_shared()
        if r < 0.2:
            return self.op_counter(self.pick(self.counters))
        key = self.pick(self.own)
        r = self.rng.random()
        for weight, op in ((0.2, lambda: self.op_store(key, b"set")),
                           (0.13, lambda: self.op_get(key, b"get")),
                           (0.04, lambda: self.op_get(key, b"gets")),
                           (0.03, lambda: self.op_get(key, self.rng.choice([b"gat", b"gats"]))),
                           (0.06, lambda: self.op_cas(key)),
                           (0.04, lambda: self.op_store(key, b"add")),
                           (0.04, lambda: self.op_store(key, b"replace")),
                           (0.04, lambda: self.op_concat(key, b"append")),
                           (0.03, lambda: self.op_concat(key, b"prepend")),
                           (0.03, lambda: self.op_touch(key)),
                           (0.03, lambda: self.op_delete(key)),
                           (0.02, lambda: self.op_delete(key, meta=True)),
                           (0.11, lambda: self.op_mg(key)),
                           (0.1, lambda: self.op_ms(key))):
            if r < weight:
                return op()
            r -= weight
        return self.op_multiget([self.pick(self.own) for _ in range(self.rng.randint(2, 10))])

    def batch(self, wire, ops):
        self.batch_start = time.monotonic()
        self.flush_done_at_send = self.shared.flush_done.value
        wire.send(b"".join(req for req, _ in ops))
        for _, handle in ops:
            handle(wire)
        self.finish_batch()
        self.stats["ops"] += len(ops)
        self.shared.ops[self.index] = self.stats["ops"]

    def flush(self, wire):
        self.shared.flush_started.value += 1
        n = self.shared.flush_started.value
        wire.send(b"flush_all\r\n")
        line = wire.line()
        if line != b"OK":
            raise Failure("flush_all: %r" % line)
        self.shared.flush_done.value = n
        self.stats["flushes"] += 1
        self.stats["ops"] += 1

    def final_sweep(self, wire):
        """Re-reads every owned key and counter once."""
        keys = self.own + self.counters
        for i in range(0, len(keys), 50):
            chunk = [k for k in keys[i:i + 50] if k in self.own]
            counters = [k for k in keys[i:i + 50] if k not in self.own]
            ops = [self.op_multiget(chunk)] if chunk else []
            ops += [(b"get %s\r\n" % k, self.counter_get(k)) for k in counters]
            if ops:
                self.batch(wire, ops)

    def counter_get(self, key):
        e = self.model[key]

        def handle(w):
            line = w.line()
            if line == b"END":
                e.forget()
                return
            parts = line.split(b" ")
            data = w.data_block(int(parts[3]))
            w.line()  # END
            if self.may_be_present(key, e, "get counter") and e.number is not None:
                self.check_number(key, int(data.rstrip(b" ")), e.number, "get counter")

        return handle

    def run(self, deadline):
        wire = Wire(self.port)
        try:
            while time.monotonic() < deadline and not self.shared.stop.is_set():
                if self.index == 0 and time.monotonic() >= self.next_flush:
                    self.flush(wire)
                    self.next_flush = time.monotonic() + FLUSH_EVERY
                ops, size = [], 0
                while len(ops) < BATCH and size < BATCH_BYTES:
                    req, handle = self.choose()
                    ops.append((req, handle))
                    size += len(req)
                self.batch(wire, ops)
            self.final_sweep(wire)
        except Failure as e:
            self.error("connection: %s" % e)
        finally:
            wire.close()


def client_main(index, port, shared, sizes, seed, deadline, results):
    own, shared_keys, counters = sizes
    client = Client(index, port, shared, own, shared_keys, counters, seed)
    try:
        client.run(deadline)
    except Exception as e:  # a bug in the client itself: report it, do not hang the run
        import traceback

        client.error("client crashed: %s\n%s" % (e, traceback.format_exc()))
    results.put((index, client.stats, client.errors))


# ----------------------------------------------------------------------------- the run


def key_space(args):
    total = KEYSPACE_FACTOR * args.memory * (1 << 20) // MEAN_VALUE
    own = max(50, int(total * 0.8) // args.threads)
    return own, max(50, total - own * args.threads), 20


def main(args):
    memcached = harness.is_memcached(args.server)
    check_rss = not (args.no_rss or memcached or os.environ.get("CINCH_SANITIZE"))
    server_args = ["-m", str(args.memory), "-t", "2", "-c", "4096"]
    sizes = key_space(args)
    print("stress: %s -m %d, %d clients for %d s; keys: %d owned per client, %d shared, %d "
          "counters per client%s" % (os.path.basename(args.server), args.memory, args.threads,
                                      args.seconds, sizes[0], sizes[1], sizes[2],
                                      "" if check_rss else "; RSS not checked"), flush=True)
    ctx = mp.get_context("fork")
    with harness.Server(args.server, server_args) as server:
        shared = Shared(args.threads)
        results = ctx.Queue()
        sampler = harness.MemorySampler(server.pid, period=0.05).start()
        start = time.monotonic()
        deadline = start + args.seconds
        procs = [ctx.Process(target=client_main, daemon=True,
                             args=(i, server.port, shared, sizes, args.seed, deadline, results))
                 for i in range(args.threads)]
        for p in procs:
            p.start()
        collected, last_report = {}, start
        while len(collected) < len(procs):
            try:
                index, stats, errors = results.get(timeout=1.0)
                collected[index] = (stats, errors)
            except Exception:  # queue.Empty
                pass
            now = time.monotonic()
            if now - last_report >= 10 and now < deadline:
                last_report = now
                print("  %3.0f s: %d ops, RSS %.1f MiB (peak %.1f)" %
                      (now - start, sum(shared.ops), (server.rss_kib() or 0) / 1024,
                       sampler.max_kib / 1024), flush=True)
            if now > deadline + 120:
                print("FAIL: clients did not finish within 120 s of the end", flush=True)
                break
            if not server.alive():
                shared.stop.set()
        for p in procs:
            p.join(5)
        elapsed = time.monotonic() - start
        sampler.stop()
        alive = server.alive()
        stats = {}
        if alive:
            try:
                with server.conn() as conn:
                    stats = conn.stats()
            except (OSError, harness.Timeout, harness.Closed) as e:
                print("FAIL: stats after the run: %s" % e)
                alive = False
        # SIGTERM must end it with status 0: sanitizer builds report leaks and errors here.
        exit_code = server.stop() if alive and not memcached else 0
        log = server.log()
    totals, all_errors = {}, []
    for stats_i, errors in collected.values():
        for k, v in stats_i.items():
            totals[k] = totals.get(k, 0) + v
        all_errors += errors
    missing = len(procs) - len(collected)
    errors = totals.get("errors", 0) + missing
    peak = sampler.max_kib
    limit = args.memory * 1024
    for e in all_errors[:MAX_ERRORS_KEPT]:
        print("ERROR %s" % e)
    print("ops:             %d in %.1f s (%.0f/s), %d flush_all" %
          (totals.get("ops", 0), elapsed, totals.get("ops", 0) / max(elapsed, 1e-9),
           totals.get("flushes", 0)))
    print("values verified: %d (hits %d, misses %d; reads that had to miss: %d past a TTL, "
          "%d after a flush_all)" % (totals.get("verified", 0), totals.get("hits", 0),
                                     totals.get("misses", 0), totals.get("past_ttl", 0),
                                     totals.get("past_flush", 0)))
    print("errors:          %d%s" % (errors, " (%d clients never reported)" % missing
                                     if missing else ""))
    print("evictions:       %s (curr_items %s, server out-of-memory replies %d)" %
          (stats.get("evictions", "?"), stats.get("curr_items", "?"), totals.get("oom", 0)))
    print("peak RSS:        %.1f MiB / -m %d MiB (%.0f%%, %d samples)%s" %
          (peak / 1024, args.memory, 100.0 * peak / limit, sampler.samples,
           "" if check_rss else ", not checked"))
    failed = False
    if not alive:
        print("FAIL: the server died or stopped answering\n%s" % log[-3000:])
        failed = True
    if exit_code != 0:
        print("FAIL: the server exited with status %s on SIGTERM\n%s" % (exit_code, log[-3000:]))
        failed = True
    if errors:
        print("FAIL: %d errors" % errors)
        failed = True
    if check_rss and peak > limit:
        print("FAIL: peak RSS %.1f MiB > -m %d MiB" % (peak / 1024, args.memory))
        failed = True
    if totals.get("verified", 0) == 0:
        print("FAIL: nothing was verified")
        failed = True
    print("stress: %s" % ("FAILED" if failed else "passed"), flush=True)
    return 1 if failed else 0


def extra_args(p):
    p.add_argument("--seconds", type=int, default=60, help="how long to run (default 60)")
    p.add_argument("--threads", type=int, default=8, help="client processes (default 8)")
    p.add_argument("--memory", type=int, default=64, help="server -m in MiB (default 64)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-rss", action="store_true", help="do not check RSS against -m")


if __name__ == "__main__":
    args = harness.parse_args(__doc__, extra_args)
    harness.run(main, args, time_limit=args.seconds + 180)
