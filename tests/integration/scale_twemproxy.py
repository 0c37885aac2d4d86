"""Three servers behind twemproxy (Debian's nutcracker): ketama, auto_eject_hosts.

Through the proxy: sets and gets, multi-gets spanning the three servers, incr and delete, all
correct, each key held by exactly one server and every server holding a share. Then one server
is killed (SIGKILL): the proxy ejects it after server_failure_limit failed requests (seen in its
stats), and from then on every request succeeds (0 errors): new keys land on the two left, and
the keys they held before are still there. docs/scale-out.md shows the same configuration.

  python3 tests/integration/scale_twemproxy.py --server build/release/tools/cinchd
  (also runs against /usr/bin/memcached, the reference)
"""

import json
import socket
import subprocess
import tempfile
import time

import cluster
import harness

SERVERS = 3
KEYS = 300
FAILURE_LIMIT = 2  # server_failure_limit: failed requests before the proxy ejects a server
EJECT_TIMEOUT = 10.0
AFTER_EJECT_OPS = 600

CONFIG = """cinch:
  listen: 127.0.0.1:{port}
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  server_failure_limit: {failure_limit}
  server_retry_timeout: 600000
  timeout: 3000
  servers:
{servers}
"""


def key(i, prefix="k"):
    return b"%s:%d" % (prefix.encode(), i)


def value(i):
    return b"value-%d-" % i + b"x" * (i % 200)


class Twemproxy:
    """nutcracker in front of `servers`, with its stats port; stopped with the `with` block."""

    def __init__(self, binary, servers, directory):
        self.binary, self.servers, self.directory = binary, servers, directory
        self.stats_port = None
        self.proxy = cluster.Proxy(self._argv, "nutcracker")

    def _argv(self, port):
        lines = "\n".join("   - 127.0.0.1:%d:1 s%d" % (s.port, i)
                          for i, s in enumerate(self.servers))
        conf = cluster.write_file(self.directory, "nutcracker.yml",
                                  CONFIG.format(port=port, failure_limit=FAILURE_LIMIT,
                                                servers=lines))
        self.stats_port = harness.free_port()
        # -i: stats aggregated every 100 ms (default 30 s), so an eject shows at once.
        return [self.binary, "-c", conf, "-s", str(self.stats_port), "-a", "127.0.0.1",
                "-i", "100", "-o", "/dev/stderr"]

    def check_config(self, port):
        argv = self._argv(port) + ["-t"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10)

    def stats(self):
        """The proxy's stats JSON (it sends it and closes)."""
        with socket.create_connection(("127.0.0.1", self.stats_port), timeout=5) as s:
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def __enter__(self):
        self.proxy.start()
        return self

    def __exit__(self, *exc):
        self.proxy.stop()
        return False


def check_through_proxy(c, proxy, servers):
    with proxy.conn() as p:
        stored = sum(p.set(key(i), value(i)) == b"STORED" for i in range(KEYS))
        c.equal(stored, KEYS, "sets through the proxy: STORED")
        right = sum(p.get(key(i)) == value(i) for i in range(KEYS))
        c.equal(right, KEYS, "gets through the proxy: the values set")

        counts, misplaced = cluster.spread(servers, [key(i) for i in range(KEYS)])
        c.equal(misplaced, [], "each key is held by exactly one server")
        c.check(all(n >= KEYS // 10 for n in counts), "every server holds a share of the keys",
                "keys per server: %s" % counts)
        c.note("keys per server: %s" % counts)

        # One multi-get naming 100 keys, spread over the three servers.
        names = [key(i) for i in range(0, KEYS, 3)]
        p.send(b"get " + b" ".join(names) + b"\r\n")
        got = {}
        while True:
            line = p.read_line()
            if line == b"END\r\n":
                break
            parts = line.split()
            got[parts[1]] = p.read_exact(int(parts[3]) + 2)[:-2]
        c.equal(got, {k: value(int(k.split(b":")[1])) for k in names},
                "a multi-get of %d keys through the proxy" % len(names))

        # incr / decr / delete, checked on the server that holds each key.
        for i in range(20):
            c.equal(p.set(key(i, "n"), b"%d" % (i * 10)), b"STORED", "set counter %d" % i)
        incr = [p.call(b"incr %s 5\r\n" % key(i, "n")) for i in range(20)]
        c.equal(incr, [b"%d\r\n" % (i * 10 + 5) for i in range(20)], "incr through the proxy")
        decr = [p.call(b"decr %s 2\r\n" % key(i, "n")) for i in range(20)]
        c.equal(decr, [b"%d\r\n" % (i * 10 + 3) for i in range(20)], "decr through the proxy")
        where = [cluster.holders(servers, key(i, "n")) for i in range(20)]
        c.check(all(len(w) == 1 for w in where), "each counter is on one server", str(where))
        direct = []
        for i, w in enumerate(where):
            with servers[w[0]].conn() as d:
                direct.append(d.get(key(i, "n")))
        c.equal(direct, [b"%d" % (i * 10 + 3) for i in range(20)],
                "the holding server has the counter's value")
        c.equal(p.call(b"incr %s 1\r\n" % b"no-such-counter"), b"NOT_FOUND\r\n",
                "incr of a missing key: NOT_FOUND")
        deleted = [p.call(b"delete %s\r\n" % key(i)) for i in range(0, 30)]
        c.equal(deleted, [b"DELETED\r\n"] * 30, "delete through the proxy")
        c.equal([p.get(key(i)) for i in range(30)], [None] * 30, "deleted keys miss")
        c.equal([cluster.holders(servers, key(i)) for i in range(30)], [[]] * 30,
                "deleted keys are gone from every server")


def server_stats(stats, index):
    """The proxy's counters for server `index` of pool "cinch"."""
    return stats["cinch"]["s%d" % index]


def check_eject(c, twem, servers):
    victim = 1
    survivors = [i for i in range(SERVERS) if i != victim]
    # Keys held by the survivors, to read back after the eject.
    kept = [key(i) for i in range(30, KEYS) if cluster.holders(servers, key(i))[0] != victim]
    servers[victim].stop(harness.signal.SIGKILL)
    c.note("killed server %d" % victim)

    # Requests until the proxy ejects the dead server: those that hit it fail (at most
    # FAILURE_LIMIT of them, then the eject); the stats show it.
    errors_before, ejected, i = 0, False, 0
    end = time.monotonic() + EJECT_TIMEOUT
    with twem.proxy.conn(timeout=5) as p:
        while time.monotonic() < end and not ejected:
            reply = p.set(key(i, "e"), value(i))
            if reply != b"STORED":
                errors_before += 1
            i += 1
            if i % 10 == 0 or reply != b"STORED":
                s = server_stats(twem.stats(), victim)
                ejected = s.get("server_ejected_at", 0) != 0
    c.check(ejected, "the proxy ejects the killed server",
            "no eject within %.0f s; %d errors" % (EJECT_TIMEOUT, errors_before))
    c.check(0 < errors_before <= FAILURE_LIMIT,
            "requests failed only until the eject (at most server_failure_limit)",
            "%d failed" % errors_before)
    c.note("%d requests before the eject, %d failed" % (i, errors_before))

    # From now on: 0 errors, every value right.
    errors, wrong = [], 0
    with twem.proxy.conn(timeout=5) as p:
        for j in range(AFTER_EJECT_OPS):
            k, v = key(j, "after"), value(j)
            r = p.set(k, v)
            if r != b"STORED":
                errors.append("set %s: %r" % (k, r))
                continue
            if p.get(k) != v:
                wrong += 1
            if j % 50 == 0:
                r = p.call(b"delete %s\r\n" % k)
                if r != b"DELETED\r\n":
                    errors.append("delete %s: %r" % (k, r))
        c.equal(errors, [], "0 errors after the eject (%d sets, gets, deletes)" % AFTER_EJECT_OPS)
        c.equal(wrong, 0, "every get after the eject returns the value set")
        right = sum(p.get(k) == value(int(k.split(b":")[1])) for k in kept)
        c.equal(right, len(kept), "the survivors' keys are still served through the proxy")
    counts, misplaced = cluster.spread([servers[i] for i in survivors],
                                       [key(j, "after") for j in range(AFTER_EJECT_OPS)
                                        if j % 50 != 0])
    c.equal(misplaced, [], "keys set after the eject are each on one survivor")
    c.check(all(n > 0 for n in counts), "both survivors take new keys", str(counts))


def main(args):
    c = harness.Checker(args.verbose)
    binary = cluster.find_program("nutcracker", "nutcracker")
    if binary is None:
        return 1
    with tempfile.TemporaryDirectory(prefix="cinch-twemproxy-") as directory, \
            cluster.servers(SERVERS, args.server, ["-m", "64", "-t", "1"]) as servers:
        twem = Twemproxy(binary, servers, directory)
        r = twem.check_config(harness.free_port())
        if not c.check(r.returncode == 0, "nutcracker -t accepts the configuration",
                       r.stdout + r.stderr):
            return c.finish()
        with twem:
            c.note("nutcracker on port %d, stats on %d; servers on %s" %
                   (twem.proxy.port, twem.stats_port, [s.port for s in servers]))
            check_through_proxy(c, twem.proxy, servers)
            check_eject(c, twem, servers)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__.splitlines()[0]), time_limit=60)
