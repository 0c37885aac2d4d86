#!/usr/bin/env python3
"""Differential test: the same bytes to memcached 1.6.18 and to the server; replies must match.

Both servers start with the same flags. Each case (a list of steps, see cases.py) runs on a
fresh connection to each server with its own key prefix. A step sends its bytes followed by
the sentinel "mn\\r\\n" and reads until "MN\\r\\n" (or EOF, or 3 s), counting the step's
own mn requests; a step marked `Raw` sends no sentinel and reads until EOF, or a reply and
0.3 s of silence, or 0.3 s of silence (cases.py), for requests that close the connection or
leave the server waiting for data.

A case that mismatches runs again on both servers, with a fresh key prefix of the same
length, at most twice, when the first run cannot be trusted to show the server's behaviour:
  * either server's clock (`stats` time, the second its expiry times count in) moved during
    the run: a step such as `mg R100` after `ms T100` depends on the second it lands in;
  * the server timed out on a step memcached answered: it gets 30 s for it the next time.
The replies of the last run are the ones compared, in full.

Before comparing, replies are normalised:
  * CAS values (the 5th token of "VALUE" lines, meta 'c' return flags) become <cas1>, <cas2>...
    numbered by first appearance within the case, so equal tokens stay equal;
  * the tokens of "STAT" lines and of the "VERSION" line are dropped (tails differ by design);
  * in "ME" lines (meta debug), "cls=" and "size=" (memcached's slab class and its own item
    size) become <...> and "cas=" is numbered like the other CAS values;
  * time-dependent numbers may differ by 1 (a clock tick between the two runs): meta 't'
    (remaining TTL) and 'l' (seconds since last access), and "exp=" and "la=" of "ME" lines.
A mismatching case prints, per step, what was sent and both normalised replies.
Cases listed in CAS_DISABLED run once more on a second pair of servers started with -C.
Against `--server /usr/bin/memcached` it compares memcached with itself (a sanity check).
"""

import base64
import re
import time

import harness
from cases import CAS_DISABLED, CASES, CINCH_ONLY, CLOSE, KNOWN_DEVIATIONS, SILENCE, Raw, Split

SERVER_ARGS = ["-m", "64", "-I", "1m", "-t", "2"]
SENTINEL = b"mn\r\n"
SENTINEL_REPLY = b"MN\r\n"
STEP_TIMEOUT = 3.0
RAW_WAIT = 10.0     # a Raw step's wait for the reply or EOF it expects
RAW_IDLE = 0.3      # the silence that ends a Raw step's reply (or is its answer)
CLOSED = b"<connection closed>"
TIMED_OUT = b"<timeout: no reply to the sentinel>"


# ----------------------------------------------------------------------------- running a case


class Placeholders:
    """Fills a step's {k}, {key250}, {key251}, {b64:NAME} and {cas} for one server."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.last_cas = b"0"

    def fill(self, data):
        p = self.prefix
        data = data.replace(b"{key250}", p + b"x" * (250 - len(p)))
        data = data.replace(b"{key251}", p + b"x" * (251 - len(p)))
        data = re.sub(rb"\{b64:([^}]*)\}", lambda m: base64.b64encode(p + m.group(1)), data)
        data = data.replace(b"{cas}", self.last_cas)
        return data.replace(b"{k}", p)

    def learn(self, reply):
        """Remembers the last CAS value the server sent (for a later {cas})."""
        for kind, tokens, _ in scan(reply):
            if kind == "VALUE" and len(tokens) == 5:
                self.last_cas = tokens[4]
            elif kind == "META":
                for t in tokens[1:]:
                    if re.fullmatch(rb"c\d+", t):
                        self.last_cas = t[1:]


MN_REQUEST = re.compile(rb"(?<![^\n])mn(?=[ \r\n])")
MN_REPLY = re.compile(rb"(?<![^\n])MN\r\n")


def read_sentinel(conn, expected, timeout=STEP_TIMEOUT):
    """Reads until `expected` "MN" lines arrived (the step's own mn requests + the sentinel)."""
    out = bytearray()
    deadline = time.monotonic() + timeout
    while not (out.endswith(SENTINEL_REPLY) and len(MN_REPLY.findall(out)) >= expected):
        try:
            conn._fill(deadline)
        except harness.Closed:
            out += conn.buf
            return bytes(out) + CLOSED
        except harness.Timeout:
            out += conn.buf
            return bytes(out) + TIMED_OUT
        out += conn.buf
        conn.buf.clear()
    return bytes(out)


def run_step(conn, step, ph, timeout=STEP_TIMEOUT):
    if conn.closed:
        return CLOSED
    data = ph.fill(step.data if isinstance(step, (Raw, Split)) else step)
    try:
        if isinstance(step, Split):
            for i in range(0, len(data), step.chunk):
                conn.send(data[i:i + step.chunk])
                time.sleep(0.001)
            conn.send(SENTINEL)
        elif isinstance(step, Raw):
            conn.send(data)
        else:
            conn.send(data + SENTINEL)
    except OSError:
        conn.closed = True
        return CLOSED
    if isinstance(step, Raw):
        if step.ends != SILENCE:
            conn.wait_data(RAW_WAIT)
        idle = RAW_WAIT if step.ends == CLOSE else RAW_IDLE
        reply = conn.read_idle(idle=idle, limit=max(idle, STEP_TIMEOUT))
        if conn.closed:
            reply += CLOSED
    else:
        reply = read_sentinel(conn, 1 + len(MN_REQUEST.findall(data)), timeout)
    ph.learn(reply)
    return reply


def run_case(port, index, steps, timeout=STEP_TIMEOUT):
    """Each step's reply; a step whose sentinel does not come within `timeout` s ends in
    TIMED_OUT."""
    prefix = b"d%03d_" % index
    ph = Placeholders(prefix)
    conn = harness.Conn(port, timeout=max(timeout, STEP_TIMEOUT))
    try:
        return [run_step(conn, step, ph, timeout) for step in steps]
    finally:
        conn.close()


# ----------------------------------------------------------------------------- normalising


def scan(reply):
    """Splits a reply into (kind, tokens, raw bytes) records; data blocks stay with their line."""
    i, n = 0, len(reply)
    while i < n:
        j = reply.find(b"\n", i)
        if j < 0:
            yield "TAIL", [], reply[i:]
            return
        line = reply[i:j + 1]
        tokens = line.split()
        i = j + 1
        kind = "LINE"
        head = tokens[0] if tokens else b""
        size = None
        if head == b"VALUE" and len(tokens) in (4, 5) and tokens[3].isdigit():
            kind, size = "VALUE", int(tokens[3])
        elif head == b"VA" and len(tokens) >= 2 and tokens[1].isdigit():
            kind, size = "META", int(tokens[1])
        elif head in (b"HD", b"EN", b"NF", b"NS", b"EX", b"MN"):
            kind = "META"
        elif head == b"STAT":
            kind = "STAT"
        elif head == b"VERSION":
            kind = "VERSION"
        elif head == b"ME":
            kind = "DEBUG"
        if size is not None:
            end = min(n, i + size + 2)
            line += reply[i:end]
            i = end
        yield kind, tokens, line


def normalise(replies):
    """Normalises one server's replies to a case (a list, one per step) with one CAS map."""
    cas_map = {}

    def cas(m):
        token = cas_map.setdefault(m.group(2), b"<cas%d>" % (len(cas_map) + 1))
        return m.group(1) + token

    out = []
    for reply in replies:
        parts = []
        last_stat = False
        for kind, tokens, raw in scan(reply):
            if kind == "STAT":
                if not last_stat:
                    parts.append(b"STAT <...>\r\n")
                last_stat = True
                continue
            last_stat = False
            nl = raw.find(b"\n") + 1
            head, rest = raw[:nl], raw[nl:]
            if kind == "VERSION":
                head = b"VERSION <...>\r\n"
            elif kind == "VALUE":
                head = VALUE_CAS.sub(cas, head)
            elif kind == "META":
                head = META_CAS.sub(cas, head)
            elif kind == "DEBUG":
                head = DEBUG_CAS.sub(cas, DEBUG_SLAB.sub(rb"\1<...>", head))
            parts.append(head + rest)
        out.append(b"".join(parts))
    return out


VALUE_CAS = re.compile(rb"^(VALUE \S+ \S+ \S+ )(\d+)(?=\s)")
META_CAS = re.compile(rb"( c)(\d+)(?=[ \r\n])")
DEBUG_CAS = re.compile(rb"( cas=)(\d+)(?=[ \r\n])")
DEBUG_SLAB = re.compile(rb"( (?:cls|size)=)(\d+)")
CLOCK = re.compile(rb"(?<= )(t|l|exp=|la=)(-?\d+)(?=[ \r])")


def same(a, b):
    """Equal, allowing time-dependent numbers to differ by 1 at the same positions."""
    if a == b:
        return True
    ta, tb = CLOCK.findall(a), CLOCK.findall(b)
    if len(ta) != len(tb) or CLOCK.sub(rb"\1?", a) != CLOCK.sub(rb"\1?", b):
        return False
    return all(abs(int(x[1]) - int(y[1])) <= 1 for x, y in zip(ta, tb))


# ----------------------------------------------------------------------------- reporting


def show(data, limit=400, at=0):
    """A printable window of `data` around offset `at`."""
    start = max(0, at - limit // 4)
    text = repr(data[start:start + limit])
    return ("...%d bytes... " % start if start else "") + text + (
        " ...(%d bytes total)" % len(data) if len(data) > start + limit else "")


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def describe(steps, ref, sut, sut_name):
    lines = []
    for i, (step, r, s) in enumerate(zip(steps, ref, sut)):
        if same(r, s):
            continue
        data = step.data if isinstance(step, (Raw, Split)) else step
        at = first_difference(r, s)
        lines.append("step %d sent: %s" % (i, show(data, 200)))
        lines.append("  memcached: %s" % show(r, 400, at))
        lines.append("  %s: %s" % (sut_name, show(s, 400, at)))
    return "\n     ".join(lines)


RUNS = 3            # at most, of one case (see the module's doc)
PREFIX_SHIFT = 300  # a second run's key prefix: index + 300, the same length (< 1000)


def clock_of(conn):
    return conn.stats().get("time")


def run_pair(clocks, ref, sut, index, steps):
    """Both servers' normalised replies to one case, and whether a rerun may tell more."""
    timeout = STEP_TIMEOUT
    for attempt in range(RUNS):
        before = [clock_of(conn) for conn in clocks]
        prefix = index + PREFIX_SHIFT * attempt
        r = normalise(run_case(ref.port, prefix, steps))
        s = normalise(run_case(sut.port, prefix, steps, timeout))
        bad = first_mismatch(r, s)
        if bad is None:
            break
        if late(r[bad], s[bad]):
            timeout = harness.LATE_REPLY
        elif before == [clock_of(conn) for conn in clocks]:  # no tick either: a real mismatch
            break
    return r, s


def first_mismatch(r, s):
    """The first step whose normalised replies differ (None: none does)."""
    for i, (x, y) in enumerate(zip(r, s)):
        if not same(x, y):
            return i
    return None


def late(ref_reply, sut_reply):
    """The server under test timed out on a step memcached answered."""
    return sut_reply.endswith(TIMED_OUT) and not ref_reply.endswith(TIMED_OUT)


def compare_cases(c, args, ref, sut, cases, suffix=""):
    """Runs `cases` on both servers and checks that their replies match."""
    only = re.compile(args.only) if args.only else None
    sut_name = "memcached(2)" if harness.is_memcached(args.server) else "server"
    assert max(index for index, _ in cases) < 1000 - PREFIX_SHIFT * (RUNS - 1)
    clocks = [ref.conn(), sut.conn()]
    for index, (name, steps) in cases:
        name += suffix
        if only and not only.search(name):
            continue
        r, s = run_pair(clocks, ref, sut, index, steps)
        ok = len(r) == len(s) and first_mismatch(r, s) is None
        if not ok and name in KNOWN_DEVIATIONS and not harness.is_memcached(args.server):
            c.skip("case %s" % name, "known deviation: %s\n     %s" % (
                KNOWN_DEVIATIONS[name], describe(steps, r, s, sut_name)))
            continue
        c.check(ok, "case %s" % name, "" if ok else describe(steps, r, s, sut_name))
        if args.verbose and ok:
            for step, reply in zip(steps, r):
                c.note("%s -> %s" % (show(step if isinstance(step, bytes) else step.data, 120),
                                     show(reply, 300)))
    for conn in clocks:
        conn.close()


def main(args):
    c = harness.Checker(args.verbose)
    only = re.compile(args.only) if args.only else None
    with harness.Server(harness.MEMCACHED, SERVER_ARGS + ["-C"]) as ref, \
            harness.Server(args.server, SERVER_ARGS + ["-C"]) as sut:
        compare_cases(c, args, ref, sut,
                      [(i, case) for i, case in enumerate(CASES) if case[0] in CAS_DISABLED],
                      suffix=" (-C)")
        c.check(ref.alive() and sut.alive(), "both -C servers still running", sut.log()[-2000:])
    with harness.Server(harness.MEMCACHED, SERVER_ARGS) as ref, \
            harness.Server(args.server, SERVER_ARGS) as sut:
        compare_cases(c, args, ref, sut, list(enumerate(CASES)))
        for index, (name, steps, ending) in enumerate(CINCH_ONLY, start=len(CASES)):
            if only and not only.search(name):
                continue
            if harness.is_memcached(args.server):
                c.skip("case %s" % name, "cinch-only (memcached speaks the binary protocol)")
                continue
            replies = run_case(sut.port, index, steps)
            c.check(replies[-1].endswith(ending), "case %s (cinch-only)" % name,
                    "want the last reply to end with %r; got %s" % (ending, show(replies[-1])))
        c.check(ref.alive(), "memcached still running")
        c.check(sut.alive(), "server still running", sut.log()[-2000:])
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(
        __doc__, lambda p: p.add_argument("--only", help="regex: run only matching cases")))
