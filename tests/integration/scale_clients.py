"""Client-side consistent hashing over three servers: pylibmc with ketama, pymemcache's
HashClient (rendezvous hashing).

For each client: values set through it are read back by it (single gets and a multi-get);
each key is on exactly one server and every server holds a share; a client given the list
without one server still finds every key the other two hold (only the removed server's keys
move); a client given a fourth server finds every key it does not map to the newcomer, and
keys it sets anew land only there. Then pymemcache's HashClient with one server killed: after
at most retry_attempts failures it drops the server and every later request succeeds.

  python3 tests/integration/scale_clients.py --server build/release/tools/cinchd
  (also runs against /usr/bin/memcached, the reference)
"""

import time

import pylibmc
from pymemcache.client.hash import HashClient

import cluster
import harness

SERVERS = 3
KEYS = 300


def key(i, prefix="c"):
    return "%s:%d" % (prefix, i)


def value(i):
    return b"v%d-" % i + b"y" * (i % 100)


def pylibmc_client(servers):
    return pylibmc.Client(["127.0.0.1:%d" % s.port for s in servers], binary=False,
                          behaviors={"ketama": True, "tcp_nodelay": True})


def pymemcache_client(servers, **kw):
    return HashClient([("127.0.0.1", s.port) for s in servers], connect_timeout=10, timeout=10,
                      default_noreply=False,  # a set waits for STORED
                      **kw)


def check_client(c, name, make, servers, spare):
    """`make(servers)` builds a client of kind `name` over `servers`; `spare` is a fourth
    server, empty."""
    keys = [key(i, name) for i in range(KEYS)]
    client = make(servers)
    stored = sum(bool(client.set(k, value(i))) for i, k in enumerate(keys))
    c.equal(stored, KEYS, "%s: sets" % name)
    c.equal(sum(client.get(k) == value(i) for i, k in enumerate(keys)), KEYS, "%s: gets" % name)
    got = client.get_multi(keys[::2])
    c.equal({k: got.get(k) for k in keys[::2]}, {k: value(i * 2) for i, k in enumerate(keys[::2])},
            "%s: a multi-get of %d keys" % (name, len(keys[::2])))

    raw = [k.encode() for k in keys]
    counts, misplaced = cluster.spread(servers, raw)
    c.equal(misplaced, [], "%s: each key is on exactly one server" % name)
    c.check(all(n >= KEYS // 10 for n in counts), "%s: every server holds a share" % name,
            str(counts))
    c.note("%s: keys per server %s" % (name, counts))
    home = {k: cluster.holders(servers, k.encode())[0] for k in keys}

    # One server fewer: the others' keys stay where they are.
    fewer = make(servers[:2])
    kept = [k for k in keys if home[k] != 2]
    found = sum(fewer.get(k) == value(int(k.split(":")[1])) for k in kept)
    c.equal(found, len(kept), "%s: without server 2, the other servers' %d keys are still "
            "found" % (name, len(kept)))

    # One server more: keys move only to the newcomer.
    more = make(servers + [spare])
    missed = [k for k in keys if more.get(k) is None]
    c.check(0 < len(missed) < KEYS // 2, "%s: a fourth server takes a share of the keys" % name,
            "%d of %d keys moved" % (len(missed), KEYS))
    for k in missed:
        more.set(k, value(int(k.split(":")[1])))
    landed = [cluster.holders(servers + [spare], k.encode()) for k in missed]
    c.equal([w for w in landed if 3 not in w], [],
            "%s: the keys that moved land on the new server only" % name)


def check_hashclient_failover(c, servers):
    """pymemcache HashClient with one server killed: failures only until it drops it."""
    client = pymemcache_client(servers, ignore_exc=True, retry_attempts=1, retry_timeout=0,
                               dead_timeout=600)
    servers[2].stop(harness.signal.SIGKILL)
    results = []
    for i in range(400):
        k = key(i, "failover")
        results.append(bool(client.set(k, value(i))) and client.get(k) == value(i))
    failures = [i for i, ok in enumerate(results) if not ok]
    c.check(0 < len(failures) <= 3,
            "HashClient: requests to the killed server fail only until it is dropped",
            "failed at %s" % failures[:20])
    last = failures[-1] if failures else -1
    c.check(len(results) - last - 1 >= 300, "HashClient: 0 errors after the drop",
            "%d requests after the last failure" % (len(results) - last - 1))
    c.note("HashClient: %d failed of %d, the last at request %d" % (len(failures), len(results),
                                                                     last))


def main(args):
    c = harness.Checker(args.verbose)
    with cluster.servers(SERVERS + 1, args.server, ["-m", "32", "-t", "1"]) as started:
        servers, spare = started[:SERVERS], started[SERVERS]
        for name, make in (("pylibmc", pylibmc_client), ("pymemcache", pymemcache_client)):
            t0 = time.monotonic()
            check_client(c, name, make, servers, spare)  # keys named after the client: apart
            c.note("%s: %.1f s" % (name, time.monotonic() - t0))
        t0 = time.monotonic()
        check_hashclient_failover(c, servers)
        c.note("HashClient failover: %.1f s" % (time.monotonic() - t0))
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__.splitlines()[0]), time_limit=60)
