#!/usr/bin/env python3
"""Listing keys: `lru_crawler metadump` and `stats cachedump`, and the tools that use them.

  replies:   every reply to the dump commands (class lists, errors, the pipelining refusal,
             cachedump's limit) is memcached 1.6.18's, side by side with it on the same items;
             metadump lines compared field by field (cas, la and size are each server's own,
             and the order of the lines is each server's).
  tools:     `memcdump` (libmemcached-tools, stats cachedump) and memcached's own
             `memcached-tool HOST dump` (lru_crawler metadump, then a get per key) list and
             dump every item, values and flags exact.
  big:       50,000 keys (3.6 MB of lines, more than the connection's output holds: the dump
             waits for the client to read) while another client keeps writing other keys: each
             of the 50,000 listed exactly once.
  file tier: with -o ext_path, keys on file are listed too (as many lines as curr_items), and
             listing them brings none back into memory (tier_promotions unchanged).
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time

import harness

MEMCACHED_TOOL = "/usr/share/memcached/scripts/memcached-tool"


def dump_lines(conn, command, timeout=30.0):
    """Sends a dump command; returns its lines (without END) or the single other reply."""
    conn.send(command + b"\r\n")
    lines = []
    while True:
        line = conn.read_until(b"\n", timeout=timeout)
        if line == b"END\r\n":
            return lines
        if not line.startswith((b"key=", b"ITEM ")):
            return [line] if not lines else lines + [line]
        lines.append(line)


def read_to_end(sock, end, timeout):
    """Everything the socket sends until it has sent `end` (a large reply, read in chunks)."""
    sock.settimeout(timeout)
    chunks = []
    tail = b""
    while not tail.endswith(end):
        data = sock.recv(1 << 16)
        if not data:
            break
        chunks.append(data)
        tail = (tail + data)[-len(end):]
    return b"".join(chunks)


def metadump_fields(line):
    """A metadump line as a dict, with the fields that differ by design marked."""
    fields = dict(part.split(b"=", 1) for part in line.rstrip(b"\n").split(b" "))
    for own in (b"cas", b"la", b"size"):
        fields[own] = b"<%s>" % own
    return tuple(sorted(fields.items()))


def fill_same(conn):
    conn.send(b"set a 0 0 1\r\nx\r\nset b%20c 3 2000000000 2\r\nyy\r\nset sp\xc3\xa9 5 0 0\r\n\r\n"
              b"get a\r\n")
    for _ in range(3):
        conn.read_line()
    conn.read_until(b"END\r\n")


MEMCACHED_BUSY = b"BUSY currently processing crawler request\r\n"


def replies(server, reference=False):
    """Every dump command's reply. `reference` is memcached, whose LRU maintainer thread
    shapes two of them, so the test waits for it:
      - cachedump lists only the COLD queue, and new items start HOT: the maintainer moves
        them, within a second or so. The dumps start once all three are COLD.
      - the maintainer also starts the crawler on its own (an autoexpire crawl at start and
        every few seconds after), and a metadump that arrives during one is BUSY. There
        (only) the command is sent again once the crawler is free.
    cinchd has neither queue nor background crawl, and frees its one dump slot before the END
    of a dump reaches the client: a BUSY from it still fails the comparison."""
    conn = server.conn()
    fill_same(conn)
    for _ in range(1000):
        items = conn.stats(b"items")
        if not reference or items.get("items:1:number_cold") == items.get("items:1:number"):
            break
        time.sleep(0.01)
    out = []
    for command in [b"lru_crawler metadump all", b"lru_crawler metadump hash",
                    b"lru_crawler metadump 1", b"lru_crawler metadump 2,1,,",
                    b"lru_crawler metadump 63", b"lru_crawler metadump 0",
                    b"lru_crawler metadump 64", b"lru_crawler metadump 1,x",
                    b"lru_crawler metadump ,", b"lru_crawler metadump",
                    b"lru_crawler metadump all extra", b"stats cachedump 1 0",
                    b"stats cachedump 1 2", b"stats cachedump 2 0", b"stats cachedump 0 0",
                    b"stats cachedump 64 0", b"stats cachedump 1", b"stats cachedump 1 x",
                    b"stats cachedump -1 0"]:
        lines = dump_lines(conn, command)
        for _ in range(500):
            if not (reference and lines == [MEMCACHED_BUSY]):
                break
            time.sleep(0.01)
            lines = dump_lines(conn, command)
        if command.startswith(b"lru_crawler"):
            lines = sorted(metadump_fields(l) if l.startswith(b"key=") else l for l in lines)
        elif command != b"stats cachedump 1 2":  # which two items is each server's choice
            lines = sorted(lines)
        else:
            lines = len(lines)
        out.append((command, lines))
        # memcached's crawler is asynchronous: wait for it to let go of the connection.
        conn.send(b"mn\r\n")
        conn.read_until(b"MN\r\n")
    conn.send(b"mg a v\r\nlru_crawler metadump all\r\nmn\r\n")
    out.append((b"pipelined", conn.read_until(b"MN\r\n")))
    conn.close()
    return out


def check_replies(ctx, args):
    with harness.Server(harness.MEMCACHED, ["-m", "64"]) as mc:
        want = replies(mc, reference=True)
    with harness.Server(args.server, ["-m", "64"]) as cinch:
        got = replies(cinch)
    for (command, w), (_, g) in zip(want, got):
        ctx.check(g == w, "reply to %r" % command, "cinchd %r\n     memcached %r" % (g, w))


def check_tools(ctx, args):
    from pymemcache.client.base import Client
    with harness.Server(args.server, ["-m", "64"]) as s:
        client = Client(("127.0.0.1", s.port), connect_timeout=5, timeout=10)
        items = {b"tool:%d" % i: (b"v%d" % i * (1 + i % 7), i) for i in range(1000)}
        for key, (value, flags) in items.items():
            client.set(key, value, flags=flags, noreply=False)
        client.close()
        out = subprocess.run(["memcdump", "--servers=127.0.0.1:%d" % s.port],
                             capture_output=True, timeout=60)
        listed = out.stdout.split()
        ctx.equal(out.returncode, 0, "memcdump exits 0")
        ctx.check(sorted(listed) == sorted(items), "memcdump lists every key once",
                  "%d listed of %d" % (len(listed), len(items)))
        out = subprocess.run(["perl", MEMCACHED_TOOL, "127.0.0.1:%d" % s.port, "dump"],
                             capture_output=True, timeout=60)
        # "add <key> <flags> <exptime> <bytes>\r\n<value>\r\n" per item.
        dumped = {}
        data = out.stdout
        pos = 0
        while pos < len(data):
            eol = data.index(b"\r\n", pos)
            head = data[pos:eol].split()
            size = int(head[4])
            dumped[head[1]] = (data[eol + 2:eol + 2 + size], int(head[2]))
            pos = eol + 2 + size + 2
        ctx.check(dumped == items, "memcached-tool dump writes every item, value and flags",
                  "%d dumped of %d; stderr %r" % (len(dumped), len(items), out.stderr[-300:]))


def check_big(ctx, args):
    from pymemcache.client.base import Client
    with harness.Server(args.server, ["-m", "128"]) as s:
        client = Client(("127.0.0.1", s.port), connect_timeout=5, timeout=10)
        n = 50_000
        batch = {}
        for i in range(n):
            batch[b"stay:%d" % i] = b"v"
            if len(batch) == 500:
                client.set_many(batch, noreply=False)
                batch = {}
        stop = threading.Event()
        writes = [0]

        def writer():
            w = Client(("127.0.0.1", s.port), connect_timeout=5, timeout=10)
            i = 0
            while not stop.is_set():
                w.set(b"churn:%d" % (i % 20_000), b"c" * (i % 300), noreply=False)
                if i % 3 == 0:
                    w.delete(b"churn:%d" % ((i * 7) % 20_000), noreply=False)
                i += 1
                writes[0] = i
            w.close()

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        while writes[0] == 0 and t.is_alive():  # the writer is under way
            time.sleep(0.01)
        conn = s.conn(timeout=30)
        conn.send(b"lru_crawler metadump all\r\n")
        lines = read_to_end(conn.sock, b"\nEND\r\n", 60).split(b"\n")[:-1]
        stop.set()
        t.join()
        stays = [l for l in lines if l.startswith(b"key=stay%3A")]
        keys = set(stays)
        ctx.check(len(stays) == n and len(keys) == n, "a dump during writes lists each kept key once",
                  "%d lines, %d distinct, of %d" % (len(stays), len(keys), n))
        ctx.check(writes[0] > 0, "the writer wrote meanwhile", "%d writes" % writes[0])
        st = conn.stats()
        ctx.check(int(st.get("curr_connections", 0)) >= 1, "the server still serves", "")
        client.close()
        conn.close()


def check_sparse_tenant(ctx, args, io_uring):
    """A tenant's dump in a large index yields its worker between bounded stretches (one
    worker here): its own keys only, each once, while another connection keeps being served.
    On the default event loop (io_uring where the kernel allows it) and on epoll."""
    tmp = tempfile.mkdtemp(prefix="cinch-keydump-")
    try:
        auth = os.path.join(tmp, "auth")
        with open(auth, "w") as f:
            f.write("admin:secret\ntenant:secret:16\n")
        with harness.Server(args.server, ["-m", "128", "-t", "1", "-Y", auth] +
                          ([] if io_uring else ["-o", "io_uring=0"])) as s:
            admin, tenant, other = s.conn(timeout=30), s.conn(timeout=30), s.conn(timeout=30)
            for conn, user in ((admin, b"admin"), (tenant, b"tenant"), (other, b"admin")):
                conn.send(b"set a 0 0 %d\r\n%s secret\r\n" % (len(user) + 7, user))
                ctx.equal(conn.read_until(b"\r\n"), b"STORED\r\n", "%s logs in" % user.decode())
            for i in range(0, 100_000, 5000):
                admin.send(b"".join(b"set k:%d 0 0 1 noreply\r\nv\r\n" % j
                                    for j in range(i, i + 5000)))
            admin.send(b"mn\r\n")
            admin.read_until(b"MN\r\n", timeout=60)
            for key in (b"mine:1", b"mine:2", b"mine:3"):
                tenant.send(b"set %s 0 0 1\r\nt\r\n" % key)
                tenant.read_until(b"STORED\r\n")
            # The dump and the other connection's requests, pipelined together, three times.
            for _ in range(3):
                tenant.send(b"lru_crawler metadump all\r\nmn\r\n")
                other.send(b"mn\r\n" * 20)
                lines = read_to_end(tenant.sock, b"\nEND\r\nMN\r\n", 30).split(b"\n")[:-1]
                keys = sorted(l.split(b" ")[0] for l in lines if l.startswith(b"key="))
                ctx.equal(keys, [b"key=mine%3A1", b"key=mine%3A2", b"key=mine%3A3"],
                          "the tenant's dump lists its own keys, each once")
                ctx.equal(other.read_until(b"MN\r\n" * 20, timeout=30), b"MN\r\n" * 20,
                          "the other connection is answered")
            admin.send(b"get k:0 k:99999\r\n")
            ctx.equal(admin.read_until(b"END\r\n"),
                      b"VALUE k:0 0 1\r\nv\r\nVALUE k:99999 0 1\r\nv\r\nEND\r\n",
                      "the other keyspace's items are still there")
            for conn in (admin, tenant, other):
                conn.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_file_tier(ctx, args):
    tmp = tempfile.mkdtemp(prefix="cinch-keydump-")
    try:
        with harness.Server(args.server, ["-m", "24", "-o",
                                          "ext_path=%s/tier:64m" % tmp]) as s:
            conn = s.conn(timeout=30)
            value = b"x" * 2000
            for i in range(15_000):  # 30 MB through 24 MiB: most go to the file
                conn.send(b"set f:%d 0 0 %d noreply\r\n%s\r\n" % (i, len(value), value))
            conn.send(b"mn\r\n")
            conn.read_until(b"MN\r\n", timeout=60)
            before = conn.stats(b"cinch")
            items = int(conn.stats()["curr_items"])
            lines = dump_lines(conn, b"lru_crawler metadump all", timeout=60)
            after = conn.stats(b"cinch")
            ctx.check(int(before.get("tier_items", 0)) > 1000, "items went to the file",
                      str(before.get("tier_items")))
            ctx.check(len(lines) == items == len(set(lines)),
                      "metadump lists every item, those on file too",
                      "%d lines for %d items" % (len(lines), items))
            ctx.equal(after.get("tier_promotions"), before.get("tier_promotions"),
                      "listing brings nothing back from the file")
            conn.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(args):
    harness.skip_unless_cinch(args, "compared with memcached inside")
    ctx = harness.Checker(args.verbose)
    check_replies(ctx, args)
    check_tools(ctx, args)
    check_big(ctx, args)
    for io_uring in (0, 1):
        check_sparse_tenant(ctx, args, io_uring)
    check_file_tier(ctx, args)
    return ctx.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=240)
