#!/usr/bin/env python3
"""-o idle_timeout=2, memcached's option, side by side with memcached 1.6.18.

On each server, at once:
  idle:     a pymemcache client gets a key, then sits idle, and a raw connection that never
            sends anything sits beside it: the server closes both, each not before 2 s and
            within 10 s; the pymemcache client's next get fails (the connection is gone) and
            the one after reconnects and finds the key.
  talking:  a client that sends a get every 0.3 s for 5 s is never closed (checked when the
            test's own process ran without a pause of 1.5 s or more between its requests).
  unread:   a client that asked for a 1 MB value twenty times and reads nothing is not closed
            while its reply waits (memcached leaves a connection that it is writing to alone
            too), and then gets its whole reply.
  stats:    `stats settings` shows idle_timeout 2; `stats` idle_kicks counts the closed
            connections (2), as memcached's does.
cinchd alone: -o idle_timeout=-1 is refused with a message; without the option `stats` shows
no idle_kicks, as memcached.
"""

import select
import socket
import subprocess
import threading
import time

import harness

TIMEOUT = 2
BIG = 1000 * 1000
GETS = 20
PAUSE = 1.5  # a pause of the test's own process this long makes the talker check moot


def wait_eof(sock, since, limit):
    """Seconds from `since` (time.monotonic()) until the server closed `sock`; None: not
    within `limit` of `since`. Reads nothing: a reply the server sent stays for its client."""
    while time.monotonic() - since < limit:
        ready, _, _ = select.select([sock], [], [], limit - (time.monotonic() - since))
        if not ready:
            break
        try:
            if not sock.recv(1, socket.MSG_PEEK):
                return time.monotonic() - since
        except ConnectionResetError:
            return time.monotonic() - since
        time.sleep(0.05)  # bytes to read, not an EOF (yet)
    return None


def talker(port, out):
    """A get every 0.3 s for 5 s: (errors, the longest time between two requests)."""
    from pymemcache.client.base import Client
    c = Client(("127.0.0.1", port), connect_timeout=10, timeout=10)
    errors, longest, last = 0, 0.0, time.monotonic()
    end = last + 5.0
    while time.monotonic() < end:
        time.sleep(0.3)
        try:
            errors += c.get(b"idle:k") != b"v"
        except Exception:  # pylint: disable=broad-except
            errors += 1
        longest = max(longest, time.monotonic() - last)
        last = time.monotonic()
    c.close()
    out["talker"] = (errors, longest)


def read_exactly(sock, size, timeout):
    sock.settimeout(timeout)
    got = bytearray()
    while len(got) < size:
        data = sock.recv(1 << 20)
        if not data:
            break
        got += data
    return bytes(got)


def scenario(server, out):
    """Runs every part against one server; fills `out` with what was seen."""
    from pymemcache.client.base import Client
    from pymemcache.exceptions import MemcacheUnexpectedCloseError
    port = server.port
    with server.conn() as setup:
        setup.set(b"idle:k", b"v")
        setup.set(b"idle:big", b"b" * BIG)
    talk = threading.Thread(target=talker, args=(port, out))
    talk.start()
    unread = socket.socket()
    unread.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    unread.connect(("127.0.0.1", port))
    unread.sendall(b"get idle:big\r\n" * GETS)

    silent_since = time.monotonic()
    silent = socket.create_connection(("127.0.0.1", port), timeout=10)
    client = Client(("127.0.0.1", port), connect_timeout=10, timeout=10)
    out["first"] = client.get(b"idle:k")
    out["client_eof"] = wait_eof(client.sock, time.monotonic(), 10.0)
    out["silent_eof"] = wait_eof(silent, silent_since, 10.0)
    silent.close()
    try:
        out["after_kick"] = client.get(b"idle:k")
    except (MemcacheUnexpectedCloseError, OSError):
        out["after_kick"] = "closed"
    out["reconnected"] = client.get(b"idle:k")
    client.close()
    talk.join()

    time.sleep(TIMEOUT + 1.5)  # the unread connection has waited longer than the timeout
    want = (b"VALUE idle:big 0 %d\r\n" % BIG + b"b" * BIG + b"\r\nEND\r\n") * GETS
    out["unread_complete"] = read_exactly(unread, len(want), 30) == want
    unread.close()
    with server.conn() as s:
        out["settings_idle_timeout"] = s.stats(b"settings").get("idle_timeout")
        out["idle_kicks"] = s.stats().get("idle_kicks")


def check(c, name, seen):
    c.equal(seen["first"], b"v", "%s: the idle client's get" % name)
    for who in ("client", "silent"):
        eof = seen[who + "_eof"]
        c.check(eof is not None and eof >= TIMEOUT - 0.2, "%s: the %s connection closed after "
                "%d s idle, within 10 s" % (name, who, TIMEOUT), "closed after %r s" % eof)
    c.equal(seen["after_kick"], "closed", "%s: pymemcache's get on the closed connection" % name)
    c.equal(seen["reconnected"], b"v", "%s: pymemcache reconnects" % name)
    errors, longest = seen["talker"]
    if longest < PAUSE:
        c.equal(errors, 0, "%s: a client talking every 0.3 s is never closed" % name)
    else:
        c.note("%s: talker check moot: this process paused %.1f s" % (name, longest))
    c.check(seen["unread_complete"], "%s: a client with its reply unread is not closed" % name)
    c.equal(seen["settings_idle_timeout"], str(TIMEOUT), "%s: stats settings idle_timeout" % name)


def main(args):
    c = harness.Checker(args.verbose)
    flags = ["-m", "64", "-t", "2", "-o", "idle_timeout=%d" % TIMEOUT]
    seen = {"memcached": {}, "server": {}}
    with harness.Server(harness.MEMCACHED, flags) as mc, \
            harness.Server(args.server, flags) as sut:
        runs = [threading.Thread(target=scenario, args=(mc, seen["memcached"])),
                threading.Thread(target=scenario, args=(sut, seen["server"]))]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        c.check(sut.alive(), "server still running", sut.log()[-2000:])
    for name in ("memcached", "server"):
        check(c, name, seen[name])
    c.equal(seen["server"].get("idle_kicks"), seen["memcached"].get("idle_kicks"),
            "stats idle_kicks as memcached's")
    c.equal(seen["server"].get("idle_kicks"), "2", "stats idle_kicks: the two idle connections")

    if not harness.is_memcached(args.server):
        with harness.Server(args.server, ["-m", "64"]) as plain:
            with plain.conn() as s:
                c.check("idle_kicks" not in s.stats(), "no idle_kicks without the option")
        bad = subprocess.run([args.server, "-p", "0", "-u", "root", "-o", "idle_timeout=-1"],
                             capture_output=True, timeout=30)
        c.check(bad.returncode != 0 and b"idle_timeout" in bad.stderr,
                "-o idle_timeout=-1 refused with a message",
                "exit %d, stderr %r" % (bad.returncode, bad.stderr[-300:]))
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__.splitlines()[0]), time_limit=120)
