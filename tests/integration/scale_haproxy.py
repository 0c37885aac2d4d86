"""Bazel's HTTP build cache sharded by haproxy over three cinchd (balance uri, hash-type
consistent; each cinchd --http-port with -o ac_check=0, as docs/scale-out.md configures it).

Through haproxy: CAS blobs and action-cache entries PUT (python's http.client and curl) and
read back byte for byte; each digest is held by exactly one backend and every backend holds a
share; the backends' own stats (http_puts, http_get_hits) show each PUT reaching one backend
and the same digest always landing on the same one. Then one backend is killed: once haproxy's
health check marks it DOWN, entries on the others are still hits (consistent hashing moved
only the dead one's share), the dead one's are misses (404), never a 5xx, and uploading them
again stores them on the survivors.

  python3 tests/integration/scale_haproxy.py --server build/release/tools/cinchd
"""

import csv
import hashlib
import http.client
import io
import random
import subprocess
import tempfile
import time

import cluster
import harness
from http_cache import HttpServer

SERVERS = 3
BLOBS = 90
ACTIONS = 30
REPEATS = 5
DOWN_TIMEOUT = 10.0

CONFIG = """global
  maxconn 256
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend bazel_cache
  bind 127.0.0.1:{port}
  default_backend cinch
frontend stats
  bind 127.0.0.1:{stats_port}
  stats enable
  stats uri /stats
backend cinch
  balance uri
  hash-type consistent
{servers}
"""


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Haproxy:
    def __init__(self, binary, backends, directory):
        self.binary, self.backends, self.directory = binary, backends, directory
        self.stats_port = None
        self.proxy = cluster.Proxy(self._argv, "haproxy")

    def _argv(self, port):
        self.stats_port = harness.free_port()
        # A TCP check every 100 ms; one failure marks a server DOWN.
        lines = "\n".join("  server c%d 127.0.0.1:%d check inter 100ms fall 1 rise 1" %
                          (i, b.http_port) for i, b in enumerate(self.backends))
        conf = cluster.write_file(self.directory, "haproxy.cfg",
                                  CONFIG.format(port=port, stats_port=self.stats_port,
                                                servers=lines))
        return [self.binary, "-db", "-f", conf]  # -db: in the foreground

    def check_config(self, port):
        return subprocess.run([self.binary, "-c", "-f", self._argv(port)[-1]],
                              capture_output=True, text=True, timeout=10)

    def status(self):
        """{server name: status} of backend "cinch", from haproxy's CSV stats."""
        conn = http.client.HTTPConnection("127.0.0.1", self.stats_port, timeout=5)
        conn.request("GET", "/stats;csv")
        body = conn.getresponse().read().decode()
        conn.close()
        rows = csv.DictReader(io.StringIO(body.lstrip("# ")))
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == "cinch"}

    def client(self):
        return http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=10)

    def __enter__(self):
        self.proxy.start()
        return self

    def __exit__(self, *exc):
        self.proxy.stop()
        return False


def request(conn, method, path, body=None):
    conn.request(method, path, body=body)
    r = conn.getresponse()
    return r.status, r.read()


def stat_sums(backends, name):
    out = []
    for b in backends:
        with b.conn() as c:
            out.append(int(c.stats().get(name, "0")))
    return out


def holders(backends, path):
    out = []
    for i, b in enumerate(backends):
        if not b.alive():
            continue
        conn = b.client(timeout=5)
        if request(conn, "GET", path)[0] == 200:
            out.append(i)
        conn.close()
    return out


def curl(url, method="GET", data=None):
    argv = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, url]
    if data is not None:
        argv += ["--data-binary", "@-", "-H", "Content-Type: application/octet-stream"]
    r = subprocess.run(argv, input=data, capture_output=True, timeout=10)
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code or 0), body


def check_sharding(c, hp, backends, entries):
    puts_before = stat_sums(backends, "http_puts")
    conn = hp.client()
    statuses = [request(conn, "PUT", path, body)[0] for path, body in entries.items()]
    c.equal(statuses, [200] * len(entries), "%d PUTs of CAS blobs and AC entries through "
            "haproxy: 200" % len(entries))
    wrong = [p for p, body in entries.items() if request(conn, "GET", p) != (200, body)]
    c.equal(wrong, [], "every entry read back through haproxy, byte for byte")

    blob = b"through curl " * 100
    url = "http://127.0.0.1:%d/cas/%s" % (hp.proxy.port, sha(blob))
    c.equal(curl(url, "PUT", blob)[0], 200, "curl PUT through haproxy: 200")
    c.equal(curl(url), (200, blob), "curl GET through haproxy")
    entries["/cas/" + sha(blob)] = blob

    home, counts, misplaced = {}, [0] * len(backends), []
    for path in entries:
        where = holders(backends, path)
        if len(where) == 1:
            home[path] = where[0]
            counts[where[0]] += 1
        else:
            misplaced.append((path, where))
    c.equal(misplaced, [], "each digest is held by exactly one backend")
    c.check(all(n > 0 for n in counts), "every backend holds a share", str(counts))
    c.note("entries per backend: %s" % counts)
    puts = [a - b for a, b in zip(stat_sums(backends, "http_puts"), puts_before)]
    c.equal(puts, counts, "each backend's http_puts counts the PUTs of its own entries")

    # The same digest lands on the same backend every time: backends' hit counters.
    chosen = list(entries)[:12]
    hits_before = stat_sums(backends, "http_get_hits")
    for _ in range(REPEATS):
        for path in chosen:
            request(conn, "GET", path)
    hits = [a - b for a, b in zip(stat_sums(backends, "http_get_hits"), hits_before)]
    want = [REPEATS * sum(home[p] == i for p in chosen) for i in range(len(backends))]
    c.equal(hits, want, "%d GETs of each of %d digests: hits only on each one's backend" %
            (REPEATS, len(chosen)))
    conn.close()
    return home


def check_backend_down(c, hp, backends, entries, home):
    victim = max(range(len(backends)), key=lambda i: sum(h == i for h in home.values()))
    backends[victim].stop(harness.signal.SIGKILL)
    name = "c%d" % victim
    end, status = time.monotonic() + DOWN_TIMEOUT, None
    while time.monotonic() < end:
        status = hp.status().get(name)
        if status and status.startswith("DOWN"):
            break
        time.sleep(0.05)
    if not c.check(status is not None and status.startswith("DOWN"),
                   "haproxy marks the killed backend DOWN", "status %r" % status):
        return
    conn = hp.client()
    got = {path: request(conn, "GET", path) for path in entries}
    server_errors = {p: s for p, (s, _) in got.items() if s >= 500}
    c.equal(server_errors, {}, "no 5xx once the backend is DOWN")
    kept = [p for p in entries if home[p] != victim]
    lost = [p for p in entries if home[p] == victim]
    c.equal([p for p in kept if got[p] != (200, entries[p])], [],
            "the survivors' %d entries are still hits (not moved)" % len(kept))
    c.equal([p for p in lost if got[p][0] != 404], [],
            "the killed backend's %d entries are misses" % len(lost))
    statuses = [request(conn, "PUT", p, entries[p])[0] for p in lost]
    c.equal(statuses, [200] * len(lost), "uploading them again: 200")
    wrong = [p for p in lost if request(conn, "GET", p) != (200, entries[p])]
    c.equal(wrong, [], "and they are hits again")
    conn.close()
    c.equal([p for p in lost if len(holders(backends, p)) != 1], [],
            "each is stored on one survivor")


def main(args):
    harness.skip_unless_cinch(args, "HTTP build cache")
    c = harness.Checker(args.verbose)
    binary = cluster.find_program("haproxy", "haproxy")
    if binary is None or cluster.find_program("curl", "curl") is None:
        return 1
    rng = random.Random(15)
    entries = {}
    for i in range(BLOBS):
        blob = rng.randbytes(rng.randint(1, 64 << 10))
        entries["/cas/" + sha(blob)] = blob
    for i in range(ACTIONS):  # with ac_check=0 an action result is stored as given
        entries["/ac/" + sha(b"action %d" % i)] = b"action result %d " % i + rng.randbytes(200)
    backend_args = ["-m", "64", "-t", "1", "-o", "ac_check=0"]
    with tempfile.TemporaryDirectory(prefix="cinch-haproxy-") as directory, \
            cluster.servers(SERVERS, args.server, backend_args, HttpServer) as backends:
        hp = Haproxy(binary, backends, directory)
        r = hp.check_config(harness.free_port())
        if not c.check(r.returncode == 0, "haproxy -c accepts the configuration",
                       r.stdout + r.stderr):
            return c.finish()
        with hp:
            c.note("haproxy on port %d; backends' HTTP ports %s" %
                   (hp.proxy.port, [b.http_port for b in backends]))
            home = check_sharding(c, hp, backends, entries)
            check_backend_down(c, hp, backends, entries, home)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__.splitlines()[0]), time_limit=60)
