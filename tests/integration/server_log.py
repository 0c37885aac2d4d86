#!/usr/bin/env python3
"""cinchd's log on stderr (docs/metrics.md, "Logging"), read from a real cinchd's output.

  1. Default level: every line is "<UTC time> cinchd[<pid>] <level>: <message>"; the start
     says the version and limits (-m, threads, -c) and each listener; 1,000 requests from
     pymemcache (and their connections) add no line; SIGTERM logs the stop.
  2. Refused connections (-c 8, 30 more clients): logged, but at most one line a second
     however many are refused.
  3. -vv: a line per connection accepted and closed; `verbosity 0` (memcached's command)
     turns them off at run time and `stats settings` shows the level.
"""

import re
import socket
import time

import harness

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z cinchd\[(\d+)\] "
                  r"(error|warning|notice|info|debug): \S")
EVENT_TIMEOUT = 10


def lines(server):
    return [l for l in server.log().splitlines() if l]


def wait_log(server, predicate, timeout=EVENT_TIMEOUT):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate(lines(server)):
            return True
        time.sleep(0.05)
    return False


def client(server):
    from pymemcache.client.base import Client
    return Client(("127.0.0.1", server.port), connect_timeout=10, timeout=10,
                  default_noreply=False)


def check_default(c, args):
    with harness.Server(args.server, ["-m", "64", "-t", "2"]) as server:
        # The server listens before it logs that it does.
        wait_log(server, lambda ls: any("listening on" in l for l in ls))
        start = lines(server)
        c.check(all(LINE.match(l) and LINE.match(l).group(1) == str(server.pid) for l in start),
                "every line: time, cinchd[pid], level", repr(start))
        c.check(any(re.search(r"notice: cinchd \S+ started: -m 64 MiB, 2 threads, -c \d+", l)
                    for l in start), "the start line has the version and the limits",
                repr(start))
        c.check(any("notice: listening on 127.0.0.1" in l for l in start),
                "the start lists the listener", repr(start))
        before = len(start)
        for i in range(10):
            mc = client(server)
            for j in range(50):
                mc.set(b"k%d" % j, b"v")
                mc.get(b"k%d" % j)
            mc.close()
        with server.conn() as conn:  # the last client's requests are served
            conn.stats()
        c.equal(len(lines(server)), before, "1,000 requests on 10 connections: no line")
        c.equal(server.stop(), 0, "SIGTERM: exit 0")
        after = lines(server)
        c.check(any(re.search(r"notice: \w+: stopping", l) for l in after) and
                "stopped" in after[-1], "SIGTERM: the stop is logged", repr(after[-3:]))


def admitted(server, n):
    """n open connections, each answered (a connection the server still counts from before,
    e.g. the harness's readiness probe, may take a slot for a moment: its refusals are retried)."""
    held = []
    for _ in range(n + 20):
        if len(held) == n:
            break
        s = socket.create_connection(("127.0.0.1", server.port), timeout=EVENT_TIMEOUT)
        try:
            s.sendall(b"version\r\n")
            reply = s.recv(100)
        except ConnectionResetError:  # refused: the server closed with our bytes unread
            reply = b""
        if reply.startswith(b"VERSION"):
            held.append(s)
        else:
            s.close()
    return held


def check_refusals(c, args):
    with harness.Server(args.server, ["-m", "64", "-t", "1", "-c", "8"]) as server:
        # Every slot held by a connection that was answered: each further one is refused.
        held = admitted(server, 8)
        c.equal(len(held), 8, "-c 8: eight connections admitted")
        began = time.monotonic()
        refused = 0
        for _ in range(30):
            with socket.create_connection(("127.0.0.1", server.port), timeout=EVENT_TIMEOUT) as s:
                refused += s.recv(100).startswith(b"ERROR Too many open connections")
        elapsed = time.monotonic() - began
        c.equal(refused, 30, "30 connections over -c refused")
        ok = wait_log(server, lambda ls: any("refused a connection" in l for l in ls))
        c.check(ok, "a refusal is logged", server.log()[-1000:])
        logged = [l for l in lines(server) if "refused a connection" in l]
        c.check(all(" notice: " in l for l in logged), "refusals are notices", repr(logged))
        c.check(1 <= len(logged) <= 1 + int(elapsed) + 1,
                "refusals rate-limited: at most a line a second",
                "%d lines in %.1f s: %r" % (len(logged), elapsed, logged))
        for s in held:
            s.close()


def check_verbose(c, args):
    with harness.Server(args.server, ["-m", "64", "-t", "1", "-vv"]) as server:
        with server.conn() as conn:
            conn.call(b"version\r\n")
        c.check(wait_log(server, lambda ls: any(" debug: connection " in l and "closed" in l
                                                for l in ls)),
                "-vv: a connection's accept and close are logged", server.log()[-1000:])
        c.check(any(" debug: connection " in l and "accepted" in l for l in lines(server)),
                "-vv: accepted", server.log()[-1000:])
        with server.conn() as conn:
            c.equal(conn.stats(b"settings").get("verbosity"), "2", "stats settings: verbosity 2")
            c.equal(conn.call(b"verbosity 0\r\n"), b"OK\r\n", "verbosity 0: OK")
            c.equal(conn.stats(b"settings").get("verbosity"), "0", "stats settings: verbosity 0")
        count = len([l for l in lines(server) if " debug: " in l])
        for _ in range(5):
            with server.conn() as conn:
                conn.call(b"version\r\n")
        with server.conn() as conn:
            conn.stats()
        c.check(len([l for l in lines(server) if " debug: " in l]) == count,
                "after verbosity 0: no more connection lines", server.log()[-1000:])


def main(args):
    harness.skip_unless_cinch(args, "log format")
    c = harness.Checker(args.verbose)
    for check in (check_default, check_refusals, check_verbose):
        check(c, args)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=120)
