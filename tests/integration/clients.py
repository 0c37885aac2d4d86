#!/usr/bin/env python3
"""Real client libraries against the server: pymemcache (Client, HashClient) and pylibmc.

Each client runs the same scenario through its own API (storage commands, cas/gets,
incr/decr, delete, touch, flush_all, stats, version, binary-safe and 1 MiB values at -I 2m),
values written by one library are read by the other, and then 50 threads, each with its own
client, check values derived from their keys.
"""

import hashlib
import sys
import threading

import harness

try:
    import pylibmc
    from pymemcache.client.base import Client as PyClient
    from pymemcache.client.hash import HashClient
    from pymemcache.exceptions import MemcacheError
except ImportError:  # a non-Debian python3 first on PATH: use Debian's packages anyway
    sys.path.append("/usr/lib/python3/dist-packages")
    import pylibmc
    from pymemcache.client.base import Client as PyClient
    from pymemcache.client.hash import HashClient
    from pymemcache.exceptions import MemcacheError

SERVER_ARGS = ["-m", "128", "-I", "2m", "-t", "2", "-c", "256"]
MIB = 1 << 20
THREADS = 50
ITERATIONS = 150

BINARY_VALUES = [
    b"",
    bytes(range(256)) * 4,
    b"\r\nEND\r\nVALUE x 0 1\r\n\r\n",
    b"\x00" * 100,
    b"a\nb\rc\r\n",
    "\u00e9\u4e2d\U0001f600".encode("utf-8"),
]


def derived(key, size=None):
    """The value every writer of `key` stores: bytes from a hash chain of the key."""
    seed = hashlib.sha256(key.encode()).digest()
    n = size if size is not None else 1 + seed[0] * 16 + seed[1] % 16  # 1 .. 4096 bytes
    out = bytearray()
    block = seed
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


# ----------------------------------------------------------------------------- adapters
# One small class per library so the scenario reads the same for each. Return values follow
# pymemcache: True on success, False on "not stored/exists", None on "not found".


class Adapter:
    """What both libraries spell the same way; `self.c` is the library's client."""

    def get(self, k):
        return self.c.get(k)

    def add(self, k, v):
        return self.c.add(k, v)

    def replace(self, k, v):
        return self.c.replace(k, v)

    def append(self, k, v):
        return self.c.append(k, v)

    def prepend(self, k, v):
        return self.c.prepend(k, v)

    def gets(self, k):
        return self.c.gets(k)

    def delete(self, k):
        return self.c.delete(k)

    def touch(self, k, exp):
        return self.c.touch(k, exp)


class Pymemcache(Adapter):
    def __init__(self, port, hashed=False):
        kw = dict(connect_timeout=5, timeout=10, no_delay=True, default_noreply=False)
        if hashed:
            self.name = "pymemcache.HashClient"
            self.c = HashClient([("127.0.0.1", port)], **kw)
        else:
            self.name = "pymemcache.Client"
            self.c = PyClient(("127.0.0.1", port), **kw)

    def set(self, k, v, exp=0):
        return self.c.set(k, v, expire=exp)

    def get_multi(self, ks):
        return self.c.get_many(ks)

    def cas(self, k, v, token):
        return self.c.cas(k, v, token)

    def incr(self, k, d):
        return self.c.incr(k, d)

    def decr(self, k, d):
        return self.c.decr(k, d)

    def flush_all(self):
        return self._node().flush_all()  # HashClient.flush_all() returns None

    def _node(self):
        """The plain Client behind a single-node HashClient (which lacks stats/version)."""
        if isinstance(self.c, HashClient):
            return next(iter(self.c.clients.values()))
        return self.c

    def stats(self):
        return {k.decode(): v for k, v in self._node().stats().items()}

    def version(self):
        return self._node().version()

    def too_big(self, k, v):
        try:
            self.c.set(k, v)
        except MemcacheError:
            return True
        return False

    def close(self):
        self.c.close() if hasattr(self.c, "close") else self.c.disconnect_all()


class Pylibmc(Adapter):
    name = "pylibmc"

    def __init__(self, port):
        self.c = pylibmc.Client(["127.0.0.1:%d" % port], binary=False,
                                behaviors={"tcp_nodelay": True, "cas": True})

    def set(self, k, v, exp=0):
        return self.c.set(k, v, time=exp)

    def get_multi(self, ks):
        return self.c.get_multi(ks)

    def cas(self, k, v, token):
        try:
            return self.c.cas(k, v, token)
        except pylibmc.NotFound:
            return None

    def incr(self, k, d):
        try:
            return self.c.incr(k, d)
        except pylibmc.NotFound:
            return None

    def decr(self, k, d):
        try:
            return self.c.decr(k, d)
        except pylibmc.NotFound:
            return None

    def flush_all(self):
        return self.c.flush_all()

    def stats(self):
        return {k.decode() if isinstance(k, bytes) else k: v
                for k, v in self.c.get_stats()[0][1].items()}

    def version(self):
        return self.stats().get("version")

    def too_big(self, k, v):
        try:
            self.c.set(k, v)
        except pylibmc.Error:
            return True
        return False

    def close(self):
        self.c.disconnect_all()


# ----------------------------------------------------------------------------- scenario


def scenario(c, cl, ns):
    """The single-client scenario; `ns` prefixes every key."""
    n = cl.name
    k = lambda s: ns + s  # noqa: E731

    c.equal(cl.set(k("a"), b"alpha"), True, "%s set" % n)
    c.equal(cl.get(k("a")), b"alpha", "%s get" % n)
    c.equal(cl.get(k("missing")), None, "%s get missing" % n)
    for i, v in enumerate(BINARY_VALUES):
        cl.set(k("bin%d" % i), v)
        c.equal(cl.get(k("bin%d" % i)), v, "%s binary-safe value #%d (%d bytes)" % (n, i, len(v)))

    cl.set(k("m1"), b"one")
    cl.set(k("m2"), b"two")
    got = cl.get_multi([k("m1"), k("m2"), k("m3")])
    c.equal(dict(got), {k("m1"): b"one", k("m2"): b"two"}, "%s get_multi" % n)

    c.equal(cl.add(k("a"), b"x"), False, "%s add existing" % n)
    c.equal(cl.add(k("new"), b"fresh"), True, "%s add new" % n)
    c.equal(cl.get(k("new")), b"fresh", "%s get after add" % n)
    c.equal(cl.replace(k("nothere"), b"x"), False, "%s replace missing" % n)
    c.equal(cl.replace(k("a"), b"beta"), True, "%s replace existing" % n)
    c.equal(cl.get(k("a")), b"beta", "%s get after replace" % n)
    c.equal(cl.append(k("a"), b"-end"), True, "%s append" % n)
    c.equal(cl.prepend(k("a"), b"start-"), True, "%s prepend" % n)
    c.equal(cl.get(k("a")), b"start-beta-end", "%s get after append+prepend" % n)
    c.equal(cl.append(k("nothere"), b"x"), False, "%s append missing" % n)
    c.equal(cl.prepend(k("nothere"), b"x"), False, "%s prepend missing" % n)

    value, token = cl.gets(k("a"))
    c.equal(value, b"start-beta-end", "%s gets value" % n)
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else str(token)
    c.check(text.isdigit(), "%s gets returns a numeric cas token" % n, repr(token))
    c.equal(cl.cas(k("a"), b"cas1", token), True, "%s cas with current token" % n)
    c.equal(cl.cas(k("a"), b"cas2", token), False, "%s cas with stale token" % n)
    c.equal(cl.get(k("a")), b"cas1", "%s value after cas" % n)
    c.equal(cl.cas(k("nothere"), b"x", 1), None, "%s cas on missing key" % n)
    _, token2 = cl.gets(k("a"))
    c.check(token2 != token, "%s cas token changes on update" % n, "%r == %r" % (token2, token))

    cl.set(k("num"), b"10")
    c.equal(cl.incr(k("num"), 5), 15, "%s incr" % n)
    c.equal(cl.decr(k("num"), 3), 12, "%s decr" % n)
    c.equal(cl.decr(k("num"), 100), 0, "%s decr floors at 0" % n)
    c.equal(cl.incr(k("nothere"), 1), None, "%s incr missing" % n)
    cl.set(k("big"), b"18446744073709551615")
    c.equal(cl.incr(k("big"), 1), 0, "%s incr wraps at 2^64" % n)

    c.equal(cl.delete(k("m1")), True, "%s delete" % n)
    c.equal(cl.delete(k("m1")), False, "%s delete missing" % n)
    c.equal(cl.get(k("m1")), None, "%s get after delete" % n)
    c.equal(cl.touch(k("m2"), 1000), True, "%s touch" % n)
    c.equal(cl.touch(k("nothere"), 1000), False, "%s touch missing" % n)
    c.equal(cl.get(k("m2")), b"two", "%s get after touch" % n)

    big = derived(k("mib"), MIB)
    c.equal(cl.set(k("mib"), big), True, "%s set 1 MiB value" % n)
    c.check(cl.get(k("mib")) == big, "%s get 1 MiB value intact" % n)
    c.check(cl.too_big(k("huge"), b"h" * (3 * MIB)), "%s 3 MiB value rejected at -I 2m" % n)
    c.equal(cl.get(k("huge")), None, "%s rejected value absent" % n)
    c.equal(cl.get(k("m2")), b"two", "%s connection usable after rejected value" % n)

    st = cl.stats()
    for name in ("pid", "uptime", "curr_items", "total_items", "bytes", "curr_connections",
                 "get_hits", "get_misses", "limit_maxbytes", "threads"):
        c.check(name in st, "%s stats has %s" % (n, name), "keys: %s" % sorted(st)[:40])
    c.check(bool(cl.version()), "%s version" % n, repr(cl.version()))

    c.equal(cl.flush_all(), True, "%s flush_all" % n)
    c.equal(cl.get(k("m2")), None, "%s get after flush_all" % n)
    c.equal(cl.set(k("after"), b"ok"), True, "%s set after flush_all" % n)
    c.equal(cl.get(k("after")), b"ok", "%s get after flush_all and set" % n)


def cross_library(c, port):
    pm, pl = Pymemcache(port), Pylibmc(port)
    try:
        for i, v in enumerate(BINARY_VALUES):
            pm.set("x:pm%d" % i, v)
            pl.set("x:pl%d" % i, v)
        for i, v in enumerate(BINARY_VALUES):
            c.equal(pl.get("x:pm%d" % i), v, "pylibmc reads pymemcache's value #%d" % i)
            c.equal(pm.get("x:pl%d" % i), v, "pymemcache reads pylibmc's value #%d" % i)
    finally:
        pm.close()
        pl.close()


# ----------------------------------------------------------------------------- parallel


def worker(t, port, errors, lock):
    make = [lambda: Pymemcache(port), lambda: Pymemcache(port, hashed=True),
            lambda: Pylibmc(port)][t % 3]
    cl = make()
    fails = []
    try:
        keys = []
        counter = "par:%d:counter" % t
        cl.set(counter, b"0")
        for i in range(ITERATIONS):
            key = "par:%d:%d" % (t, i)
            keys.append(key)
            if cl.set(key, derived(key)) is not True:
                fails.append("set %s" % key)
            got = cl.get(key)
            if got != derived(key):
                fails.append("get %s: %r" % (key, None if got is None else got[:20]))
            cl.incr(counter, 1)
            if i % 10 == 9:
                got = cl.get_multi(keys[-10:])
                for kk in keys[-10:]:
                    if got.get(kk) != derived(kk):
                        fails.append("get_multi %s" % kk)
        final = cl.get(counter)
        if final is None or int(final) != ITERATIONS:
            fails.append("counter %r != %d" % (final, ITERATIONS))
    except Exception as e:  # any client exception is a failure of this thread
        fails.append("%s: %s: %s" % (cl.name, type(e).__name__, e))
    finally:
        cl.close()
    with lock:
        errors.extend("thread %d (%s): %s" % (t, cl.name, f) for f in fails[:5])


def parallel(c, port):
    errors, lock = [], threading.Lock()
    threads = [threading.Thread(target=worker, args=(t, port, errors, lock), daemon=True)
               for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(40)
    c.check(not any(th.is_alive() for th in threads), "%d parallel clients finished" % THREADS)
    c.check(not errors, "%d parallel clients saw their own values" % THREADS,
            "\n     ".join(errors[:20]))


def main(args):
    c = harness.Checker(args.verbose)
    with harness.Server(args.server, SERVER_ARGS) as server:
        for i, make in enumerate([lambda: Pymemcache(server.port),
                                  lambda: Pymemcache(server.port, hashed=True),
                                  lambda: Pylibmc(server.port)]):
            cl = make()
            try:
                scenario(c, cl, "s%d:" % i)
            finally:
                cl.close()
        cross_library(c, server.port)
        parallel(c, server.port)
        c.check(server.alive(), "server still running", server.log()[-2000:])
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__))
