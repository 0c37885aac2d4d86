#!/usr/bin/env python3
"""Connections never cost cached data (cinch-specific: memcached's -m bounds items only).

For each event loop (io_uring, then epoll with -o io_uring=0), a cinchd -m 64 -c 4096 -t 2:

  1. 20,000 keys of 250 B (5 MB, values derived from the key) are written and read back.
  2. Hostile connections are opened and left open together:
       3,000 idle: 1,500 that never send anything, 1,500 that sent one `version` and read it;
         300 stalled mid-request: 150 in the middle of a command line, 150 in the middle of
             a set's data block;
          50 that never read: each pipelines `get hk:big` (a 500 KiB value) and a get line
             that lists hk:big 2,000 times, until the server stops reading from it.
  3. With all of them open: a fresh client's `version` is answered within 1 s (5 s under a
     sanitizer); `stats` shows no eviction and every connection counted; the connections'
     memory (connection_buffer_bytes) stays within their budget (connection_memory).
  4. Every one of the 20,000 keys still holds its value (100 % kept), VmRSS sampled every
     20 ms never exceeded -m (not under a sanitizer: shadow memory), and once the hostile
     connections are closed the server serves as before.
"""

import os
import resource
import select
import socket
import time
import zlib

import harness

LIMIT_MIB = 64
KEYS = 20000
VALUE_BYTES = 250
IDLE_SILENT = 1500
IDLE_AFTER_VERSION = 1500
STALLED_LINE = 150
STALLED_VALUE = 150
NON_READERS = 50
BIG_BYTES = 500 * 1024
SANITIZED = bool(os.environ.get("CINCH_SANITIZE"))
ANSWER_WITHIN = 5.0 if SANITIZED else 1.0


def value_for(key):
    seed = zlib.crc32(key)
    return (b"%08x" % seed) * (VALUE_BYTES // 8) + key[:VALUE_BYTES % 8].ljust(VALUE_BYTES % 8, b".")


def key_of(i):
    return b"ds:%05d" % i


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def write_dataset(server):
    with server.conn(timeout=30) as c:
        for start in range(0, KEYS, 500):
            batch = b"".join(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, VALUE_BYTES, value_for(k))
                             for k in map(key_of, range(start, start + 500)))
            c.send(batch)
        c.call(b"version\r\n")  # every set before it was handled


def dataset_problems(server):
    """Keys missing or wrong, read back with multi-key gets."""
    problems = []
    with server.conn(timeout=30) as c:
        for start in range(0, KEYS, 100):
            keys = [key_of(i) for i in range(start, start + 100)]
            c.send(b"get " + b" ".join(keys) + b"\r\n")
            got = {}
            while True:
                line = c.read_line()
                if line == b"END\r\n":
                    break
                _, key, _, size = line.split()[:4]
                got[key] = bytes(c.read_exact(int(size) + 2)[:-2])
            for k in keys:
                if got.get(k) != value_for(k):
                    problems.append(k.decode() + (" missing" if k not in got else " wrong"))
    return problems


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def open_hostile(server, c):
    """Opens every hostile connection; returns the sockets (all still open)."""
    socks = []
    for _ in range(IDLE_SILENT):
        socks.append(connect(server.port))
    talked = []
    for _ in range(IDLE_AFTER_VERSION):
        s = connect(server.port)
        s.sendall(b"version\r\n")
        talked.append(s)
    for s in talked:  # each read its reply, then idles
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(100)
            if not chunk:
                break
            reply += chunk
        c.check(reply.startswith(b"VERSION "), "idle client's version", repr(reply))
    socks += talked
    for i in range(STALLED_LINE):
        s = connect(server.port)
        s.sendall(b"get ds:00001 ds:00002 hk:stall%d" % i)  # no newline, ever
        socks.append(s)
    for i in range(STALLED_VALUE):
        s = connect(server.port)
        s.sendall(b"set hk:half%d 0 0 1000\r\n" % i + b"x" * 500)  # half the data block
        socks.append(s)
    big_line = b"get" + b" hk:big" * 2000 + b"\r\n"
    flood = (b"get hk:big\r\n" * 64 + big_line) * 4
    for _ in range(NON_READERS):
        s = connect(server.port)
        s.setblocking(False)
        sent, deadline = 0, time.monotonic() + 2
        while sent < len(flood) and time.monotonic() < deadline:
            try:
                sent += s.send(flood[sent:])
            except BlockingIOError:
                time.sleep(0.01)  # the server stopped reading from it: enough
        socks.append(s)
    return socks


def closed_or_answered(socks):
    """The sockets that are readable: the server closed them or sent something unasked."""
    poller = select.poll()
    for s in socks:
        poller.register(s, select.POLLIN | select.POLLRDHUP)
    return poller.poll(0)


def run_loop(args, c, io_uring):
    name = "io_uring" if io_uring else "epoll"
    # -b: 3,350 connections come in a burst; with the default backlog (1024) a server slowed by
    # a sanitizer on a loaded machine overflows its accept queue, and the kernel leaves clients
    # waiting seconds for a SYN-ACK retransmission (an idle client's version timed out).
    server_args = ["-m", str(LIMIT_MIB), "-t", "2", "-c", "4096", "-b", "4096"]
    if not io_uring:
        server_args += ["-o", "io_uring=0"]
    with harness.Server(args.server, server_args) as server:
        write_dataset(server)
        c.equal(dataset_problems(server)[:5], [], "%s: data set written" % name)
        with server.conn() as s:
            big = bytes(range(256)) * (BIG_BYTES // 256)
            c.equal(s.set(b"hk:big", big), b"STORED", "%s: 500 KiB value stored" % name)
        rss = harness.MemorySampler(server.pid).start()
        socks = []
        try:
            socks = open_hostile(server, c)
            t0 = time.monotonic()
            with server.conn(timeout=10) as fresh:
                reply = fresh.call(b"version\r\n")
                took = time.monotonic() - t0
                c.check(reply.startswith(b"VERSION ") and took <= ANSWER_WITHIN,
                        "%s: a fresh client's version beside %d connections" % (name, len(socks)),
                        "%r after %.2f s" % (reply, took))
                c.note("%s: fresh client answered in %.3f s" % (name, took))
                st, cs = fresh.stats(), fresh.stats(b"cinch")
            c.equal(st.get("evictions"), "0", "%s: no eviction" % name)
            quiet = socks[:len(socks) - NON_READERS]
            closed = closed_or_answered(quiet)
            c.check(not closed, "%s: idle and stalled connections left alone" % name,
                    "%d of %d closed or answered" % (len(closed), len(quiet)))
            c.note("%s: %s connections open (%d non-readers)" %
                   (name, st.get("curr_connections"), NON_READERS))
            used, budget = int(cs["connection_buffer_bytes"]), int(cs["connection_memory"])
            c.check(0 < used <= budget, "%s: connection memory within its budget" % name,
                    "%d of %d" % (used, budget))
            c.note("%s: %d connections hold %.1f MiB (%.0f B each) of a %.1f MiB budget" %
                   (name, len(socks) + 1, used / 2**20, used / (len(socks) + 1), budget / 2**20))
            problems = dataset_problems(server)
            c.equal(problems[:5], [], "%s: all %d keys kept beside the connections" % (name, KEYS))
        finally:
            for s in socks:
                s.close()
            rss.stop()
        if SANITIZED:
            c.skip("%s: RSS within -m" % name, "sanitizer shadow memory")
        else:
            c.check(rss.max_kib <= LIMIT_MIB * 1024, "%s: RSS within -m" % name,
                    "max VmRSS %d KiB > %d KiB" % (rss.max_kib, LIMIT_MIB * 1024))
            c.note("%s: max VmRSS %.1f MiB of %d" % (name, rss.max_kib / 1024, LIMIT_MIB))
        with server.conn() as s:
            c.equal(s.set(b"hk:after", b"ok"), b"STORED", "%s: serves after the storm" % name)
            c.equal(s.get(b"hk:after"), b"ok", "%s: reads after the storm" % name)
        c.equal(dataset_problems(server)[:5], [], "%s: data set intact at the end" % name)


def main(args):
    harness.skip_unless_cinch(args)
    c = harness.Checker(args.verbose)
    total = IDLE_SILENT + IDLE_AFTER_VERSION + STALLED_LINE + STALLED_VALUE + NON_READERS
    have = raise_fd_limit(2 * total + 200)
    if have < total + 100:
        c.skip("connections", "RLIMIT_NOFILE %d is too low for %d connections" % (have, total))
        return c.finish()
    for io_uring in (True, False):
        run_loop(args, c, io_uring)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=240)
