#!/usr/bin/env python3
"""Expiry without sleeping (cinch-specific): cinchd -o debugtime=1 adds memcached's debug-build
command `debugtime p|r|<seconds>` that pauses, resumes or moves the server clock; release
memcached lacks it, so this test skips there. The clock is paused first: every check below sits
one second from an expiry boundary, and a real second ticking mid-test would cross it. Covers relative, absolute and negative exptime, touch/gat/gats/mg T extending a
TTL, meta 't' counting down, the 30-day boundary, flush_all with a delay, and the meta state that
depends on time (get_expired, 'l', me's exp and la, R winning as a TTL runs down)."""

import re

import harness

SERVER_ARGS = ["-m", "64", "-t", "2", "-o", "debugtime=1"]
THIRTY_DAYS = 60 * 60 * 24 * 30


class Session:
    def __init__(self, c, conn):
        self.c, self.conn = c, conn

    def advance(self, seconds):
        self.c.equal(self.conn.call(b"debugtime %d\r\n" % seconds), b"OK\r\n",
                     "debugtime %d" % seconds)

    def line(self, request, want, what):
        """Sends `request`; its reply (as many lines as `want` has) must equal `want` (bytes,
        or a compiled pattern for a one-line reply)."""
        if isinstance(want, re.Pattern):
            got = self.conn.call(request)
            self.c.check(want.fullmatch(got) is not None, what, repr(got))
            return
        got = b"".join(self.conn.read_line() if i else self.conn.call(request)
                       for i in range(max(1, want.count(b"\r\n"))))
        self.c.equal(got, want, what)

    def hit(self, key, what, value=None):
        got = self.conn.get(key)
        ok = got is not None and (value is None or got == value)
        self.c.check(ok, "%s: %s is present" % (what, key.decode()), "got %r" % (got,))

    def miss(self, key, what):
        got = self.conn.get(key)
        self.c.check(got is None, "%s: %s has expired" % (what, key.decode()), "got %r" % (got,))

    def server_time(self):
        return int(self.conn.stats()["time"])


def relative(s):
    s.line(b"set e:rel 0 10 1\r\nx\r\n", b"STORED\r\n", "set ttl 10")
    s.line(b"set e:rel11 0 10 1\r\nx\r\n", b"STORED\r\n", "set ttl 10 (second key)")
    s.advance(9)
    s.hit(b"e:rel", "ttl 10 after 9 s")
    s.advance(2)
    s.miss(b"e:rel", "ttl 10 after 11 s")
    s.miss(b"e:rel11", "ttl 10 after 11 s")
    s.line(b"set e:never 0 0 1\r\nx\r\n", b"STORED\r\n", "set ttl 0")
    s.advance(1000000)
    s.hit(b"e:never", "ttl 0 after 1e6 s")


def absolute(s):
    now = s.server_time()
    s.c.check(now > THIRTY_DAYS, "stats time is a unix time", "time %d" % now)
    s.line(b"set e:abs 0 %d 1\r\nx\r\n" % (now + 100), b"STORED\r\n", "set absolute now+100")
    s.advance(99)
    s.hit(b"e:abs", "absolute now+100 after 99 s")
    s.advance(2)
    s.miss(b"e:abs", "absolute now+100 after 101 s")
    now = s.server_time()
    s.line(b"set e:past 0 %d 1\r\nx\r\n" % (now - 10), b"STORED\r\n", "set absolute now-10")
    s.miss(b"e:past", "absolute time in the past")
    s.line(b"set e:30d 0 %d 1\r\nx\r\n" % THIRTY_DAYS, b"STORED\r\n", "set ttl of exactly 30 days")
    s.line(b"set e:30d1 0 %d 1\r\nx\r\n" % (THIRTY_DAYS + 1), b"STORED\r\n",
           "set exptime 30 days + 1 (absolute, 1970)")
    s.miss(b"e:30d1", "exptime 30 days + 1 is an absolute time long past")
    s.advance(THIRTY_DAYS - 1)
    s.hit(b"e:30d", "30-day ttl after 30 days - 1 s")
    s.advance(2)
    s.miss(b"e:30d", "30-day ttl after 30 days + 1 s")


def negative(s):
    s.line(b"set e:neg 0 -1 1\r\nx\r\n", b"STORED\r\n", "set exptime -1")
    s.miss(b"e:neg", "negative exptime")
    s.line(b"set e:neg2 0 0 1\r\nx\r\n", b"STORED\r\n", "set")
    s.line(b"touch e:neg2 -1\r\n", b"TOUCHED\r\n", "touch -1")
    s.miss(b"e:neg2", "touched with a negative exptime")


def extend(s):
    s.line(b"set e:touch 0 10 1\r\nx\r\n", b"STORED\r\n", "set ttl 10")
    s.advance(5)
    s.line(b"touch e:touch 20\r\n", b"TOUCHED\r\n", "touch ttl 20 at 5 s")
    s.advance(10)
    s.hit(b"e:touch", "touched at 5 s to 20 s, now 15 s")
    s.advance(11)
    s.miss(b"e:touch", "touched at 5 s to 20 s, now 26 s")

    s.line(b"set e:gat 0 10 3\r\ngat\r\n", b"STORED\r\n", "set ttl 10")
    s.line(b"gat 30 e:gat\r\n", b"VALUE e:gat 0 3\r\n", "gat 30")
    s.conn.read_until(b"END\r\n")
    s.advance(20)
    s.hit(b"e:gat", "gat 30, now 20 s", b"gat")
    s.advance(11)
    s.miss(b"e:gat", "gat 30, now 31 s")

    s.line(b"set e:gats 0 10 1\r\nx\r\n", b"STORED\r\n", "set ttl 10")
    reply = s.conn.call(b"gats 100 e:gats\r\n", b"END\r\n")
    s.c.check(re.match(rb"VALUE e:gats 0 1 \d+\r\nx\r\nEND\r\n$", reply) is not None,
              "gats 100 reply", repr(reply))
    s.advance(50)
    s.hit(b"e:gats", "gats 100, now 50 s")

    s.line(b"ms e:meta 1 T100\r\nx\r\n", b"HD\r\n", "ms T100")
    s.advance(40)
    reply = s.conn.call(b"mg e:meta t v\r\n", b"\r\nx\r\n")
    s.c.check(reply in (b"VA 1 t60\r\nx\r\n", b"VA 1 t59\r\nx\r\n"), "mg t after 40 s of 100",
              repr(reply))
    s.line(b"mg e:meta T10 t\r\n", b"HD t10\r\n", "mg T10 sets the ttl")
    s.advance(11)
    s.line(b"mg e:meta t\r\n", b"EN\r\n", "mg after the T10 ttl passed")
    s.line(b"ma e:ctr N5 J1 t v\r\n", b"VA 1 t5\r\n1\r\n", "ma vivify with N5")
    s.advance(6)
    s.miss(b"e:ctr", "ma vivified with N5, now 6 s")


def flush_delay(s):
    s.line(b"set e:f1 0 0 1\r\nx\r\n", b"STORED\r\n", "set")
    s.line(b"flush_all 5\r\n", b"OK\r\n", "flush_all 5")
    s.hit(b"e:f1", "flush_all 5, now 0 s")
    s.line(b"set e:f2 0 0 1\r\ny\r\n", b"STORED\r\n", "set after the delayed flush_all")
    s.advance(6)
    s.miss(b"e:f1", "flush_all 5, now 6 s")
    s.miss(b"e:f2", "set before the flush time, now 6 s")
    s.line(b"set e:f3 0 0 1\r\nz\r\n", b"STORED\r\n", "set after the flush time")
    s.hit(b"e:f3", "set after the flush time", b"z")


def meta_state(s):
    """Time-dependent meta state: get_expired, 'l' and me's la/exp, R winning as a TTL runs."""
    before = int(s.conn.stats()["get_expired"])
    s.line(b"set e:gx 0 5 1\r\nx\r\n", b"STORED\r\n", "set ttl 5")
    s.advance(6)
    s.miss(b"e:gx", "ttl 5 after 6 s")
    s.miss(b"e:gx", "ttl 5 after 6 s, read again (removed by now)")
    s.c.equal(int(s.conn.stats()["get_expired"]) - before, 1,
              "get_expired counts the one read that met the expired item")
    s.line(b"set e:gx 0 5 1\r\nx\r\n", b"STORED\r\n", "set ttl 5")
    s.line(b"set e:mx 0 5 1\r\nx\r\n", b"STORED\r\n", "set ttl 5")
    s.advance(6)
    s.line(b"gat 10 e:gx\r\n", b"END\r\n", "gat of an expired item")
    s.line(b"mg e:mx v\r\n", b"EN\r\n", "mg of an expired item")
    s.c.equal(int(s.conn.stats()["get_expired"]) - before, 3, "gat and mg count get_expired too")

    s.line(b"set e:la 0 0 1\r\nx\r\n", b"STORED\r\n", "set")
    s.advance(30)
    s.line(b"mg e:la l h\r\n", b"HD l30 h0\r\n", "mg l: 30 s since written, not hit before")
    reply = s.conn.call(b"me e:la\r\n")
    s.c.check(re.match(rb"ME e:la exp=-1 la=30 cas=\d+ fetch=yes cls=1 size=\d+\r\n$", reply)
              is not None, "me after 30 s", repr(reply))
    s.line(b"ms e:me 1 T100\r\nx\r\n", b"HD\r\n", "ms T100")
    s.advance(10)
    reply = s.conn.call(b"me e:me\r\n")
    s.c.check(re.match(rb"ME e:me exp=-90 la=10 ", reply) is not None,
              "me exp is now - expiry (memcached's sign)", repr(reply))

    s.line(b"ms e:r 1 T100\r\nx\r\n", b"HD\r\n", "ms T100")
    s.line(b"mg e:r R30 t\r\n", b"HD t100\r\n", "R30 with 100 s left: no win")
    s.advance(75)
    s.line(b"mg e:r R30 t\r\n", b"HD t25 W\r\n", "R30 with 25 s left wins")
    s.line(b"mg e:r R30 t\r\n", b"HD t25 Z\r\n", "R30 again: the token is taken")
    s.line(b"md e:r I T10\r\n", b"HD\r\n", "md I T10")
    s.line(b"mg e:r t c\r\n", re.compile(rb"HD t10 c\d+ X W\r\n"), "stale: X and W")
    s.advance(11)
    s.line(b"mg e:r t\r\n", b"EN\r\n", "stale item gone after its T10")


def disabled(c, args):
    with harness.Server(args.server, ["-m", "64", "-t", "2"]) as server:
        with server.conn() as conn:
            c.equal(conn.call(b"debugtime 5\r\n"), b"ERROR\r\n",
                    "debugtime without -o debugtime=1 is an unknown command")


def main(args):
    harness.skip_unless_cinch(args, "debugtime (cinch-only)")
    c = harness.Checker(args.verbose)
    disabled(c, args)
    with harness.Server(args.server, SERVER_ARGS) as server:
        with server.conn() as conn:
            Session(c, conn).line(b"debugtime p\r\n", b"OK\r\n", "debugtime p pauses the clock")
        for part in (relative, absolute, negative, extend, flush_delay, meta_state):
            with server.conn() as conn:
                part(Session(c, conn))
        c.check(server.alive(), "server still running", server.log()[-2000:])
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__))
