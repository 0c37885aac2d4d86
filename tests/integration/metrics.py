#!/usr/bin/env python3
"""GET /metrics (cinchd --http-port, docs/metrics.md) against a real cinchd.

Each exposition is read with curl and parsed with python3-prometheus-client's own text parser
(prometheus_client.parser.text_string_to_metric_families), so a line the format does not
allow fails the test. Checked:
  1. The reply: 200, Content-Type "text/plain; version=0.0.4; charset=utf-8", HEAD with the
     same length and no body, PUT answered 405; every family named cinch_*, with HELP and TYPE,
     counters ending _total, the required families present.
  2. Real traffic from pymemcache moves the figures by exactly what it did: sets, gets, hits,
     misses (single gets and get_many), items, the get/set latency histograms' counts (one
     observation per request), connections opened; the HTTP cache's PUT and GETs, the build
     cache's stored, hits and misses, and cinch_http_requests_total (a scrape counts itself).
  3. The figures are those of `stats` (one place per fact): with no traffic between them, each
     mapped figure equals its stats line (limit_maxbytes, curr_items, bytes, get_hits, ...),
     and the RSS figure is the process's RSS. Scrapes during traffic from 4 clients on two
     workers: counters never go down, and the totals end exact.
  4. With -Y tenants and a file tier: the HTTP port asks for Basic credentials (none or wrong:
     401 with a challenge; a tenant's: 403; a user without a quota: 200); one series per
     tenant (label tenant="<name>", a name with a quote and a backslash escaped), each tenant's
     items, hits and misses exact; the tier's capacity.
"""

import os
import re
import subprocess
import tempfile
import time

import harness
from http_cache import HttpServer

SERVER_ARGS = ["-m", "64", "-t", "2", "-c", "256"]
SETS = 400
MISSING = 150
MULTI = 40  # get_many of MULTI keys, half of them present

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Families every exposition has (prometheus_client names a counter's family without _total).
REQUIRED = {
    "cinch_items": "gauge",
    "cinch_item_bytes": "gauge",
    "cinch_memory_limit_bytes": "gauge",
    "cinch_resident_memory_bytes": "gauge",
    "cinch_gets": "counter",
    "cinch_get_hits": "counter",
    "cinch_get_misses": "counter",
    "cinch_sets": "counter",
    "cinch_evictions": "counter",
    "cinch_expirations": "counter",
    "cinch_current_connections": "gauge",
    "cinch_connections": "counter",
    "cinch_connections_refused": "counter",
    "cinch_request_duration_seconds": "histogram",
    "cinch_http_requests": "counter",
    "cinch_http_get_hits": "counter",
    "cinch_buildcache_cas_hits": "counter",
    "cinch_buildcache_ac_incomplete": "counter",
}

# Metric sample -> its `stats` line: the same figure.
SAME_AS_STATS = {
    "cinch_items": "curr_items",
    "cinch_item_bytes": "bytes",
    "cinch_memory_limit_bytes": "limit_maxbytes",
    "cinch_gets_total": "cmd_get",
    "cinch_get_hits_total": "get_hits",
    "cinch_get_misses_total": "get_misses",
    "cinch_sets_total": "cmd_set",
    "cinch_evictions_total": "evictions",
    "cinch_expirations_total": "reclaimed",
    "cinch_connections_total": "total_connections",
    "cinch_connections_refused_total": "rejected_connections",
    "cinch_items_stored_total": "total_items",
    "cinch_threads": "threads",
    "cinch_buildcache_cas_hits_total": "buildcache_cas_hits",
    "cinch_buildcache_refused_total": "buildcache_refused",
}


class MetricsServer(HttpServer):
    """A cinchd with --http-port on a free port; `credentials` for HTTP Basic under -Y."""

    credentials = None  # "user:password"


def curl(server, path, method="GET", data=None, credentials=None):
    """(status, headers lowercased, body) of one request made with curl."""
    argv = ["curl", "-sS", "-D", "-", "-o", "-", "-X", method]
    if method == "HEAD":
        argv = ["curl", "-sS", "-I"]
    credentials = credentials or server.credentials
    if credentials:
        argv += ["-u", credentials]
    if data is not None:
        argv += ["--data-binary", "@-"]
    argv.append(server.url(path))
    out = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=30).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def scrape(c, server):
    """{(sample name, sorted labels): value} and {family: type} of one GET /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    status, headers, body = curl(server, "/metrics")
    c.equal(status, 200, "GET /metrics: 200")
    c.equal(headers.get("content-type"), CONTENT_TYPE, "GET /metrics: Content-Type")
    c.equal(int(headers.get("content-length", "-1")), len(body), "Content-Length is the body's")
    samples, families = {}, {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        families[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, families


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def delta(after, before, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


def client(server):
    from pymemcache.client.base import Client
    # Replies awaited: a figure read after a set must include it.
    return Client(("127.0.0.1", server.port), connect_timeout=10, timeout=10,
                  default_noreply=False)


def check_format(c, server):
    samples, families = scrape(c, server)
    for name, kind in REQUIRED.items():
        c.equal(families.get(name), kind, "family %s is a %s" % (name, kind))
    c.check(all(f.startswith("cinch_") for f in families), "every family is named cinch_*",
            repr([f for f in families if not f.startswith("cinch_")]))
    _, _, text = curl(server, "/metrics")
    text = text.decode()
    for name, kind in families.items():
        full = name + "_total" if kind == "counter" else name
        c.check(re.search(r"^# HELP %s \S" % re.escape(full), text, re.M) is not None and
                "# TYPE %s %s\n" % (full, kind) in text, "%s has HELP and TYPE" % full)
        if kind == "counter":
            c.check(re.search(r"^%s(\{| )" % re.escape(full), text, re.M) is not None,
                    "counter %s's samples end _total" % name)
    for cls in ("get", "set", "other"):
        inf = value(samples, "cinch_request_duration_seconds_bucket", command=cls, le="+Inf")
        count = value(samples, "cinch_request_duration_seconds_count", command=cls)
        c.check(inf is not None and inf == count, "histogram %s: +Inf bucket is its count" % cls)
    bounds = sorted(float(dict(l)["le"]) for (n, l) in samples
                    if n == "cinch_request_duration_seconds_bucket" and
                    dict(l)["command"] == "get")
    c.check(len(bounds) >= 10 and all(b2 / b1 >= 1.9 for b1, b2 in zip(bounds, bounds[1:])),
            "latency buckets are log-spaced", repr(bounds))
    status, headers, body = curl(server, "/metrics", "HEAD")
    c.check(status == 200 and headers.get("content-type") == CONTENT_TYPE and body == b"" and
            int(headers.get("content-length", "0")) > 1000,
            "HEAD /metrics: 200, the type and a length, no body", repr((status, headers)))
    status, headers, _ = curl(server, "/metrics", "PUT", b"x")
    c.check(status == 405 and headers.get("allow") == "GET, HEAD", "PUT /metrics: 405, Allow",
            repr((status, headers)))


def check_traffic(c, server):
    mc = client(server)
    mc.set(b"warm", b"up")  # the connection is open before the first scrape
    before, _ = scrape(c, server)
    value_bytes = b"v" * 100
    for i in range(SETS):
        mc.set(b"key:%d" % i, value_bytes)
    hits = 0
    for i in range(SETS):
        hits += mc.get(b"key:%d" % i) == value_bytes
    misses = sum(mc.get(b"absent:%d" % i) is None for i in range(MISSING))
    c.equal(misses, MISSING, "pymemcache: absent keys not found")
    keys = [b"key:%d" % i for i in range(MULTI // 2)] + [b"nope:%d" % i for i in range(MULTI // 2)]
    got = mc.get_many(keys)
    c.equal(hits + len(got), SETS + MULTI // 2, "pymemcache: every set key read back")
    other = client(server)
    other.get(b"from-another-connection")
    after, _ = scrape(c, server)
    c.equal(delta(after, before, "cinch_sets_total"), SETS, "cinch_sets_total moved by the sets")
    c.equal(delta(after, before, "cinch_gets_total"), SETS + MISSING + MULTI + 1,
            "cinch_gets_total moved by the keys asked for")
    c.equal(delta(after, before, "cinch_get_hits_total"), SETS + MULTI // 2,
            "cinch_get_hits_total exact")
    c.equal(delta(after, before, "cinch_get_misses_total"), MISSING + MULTI // 2 + 1,
            "cinch_get_misses_total exact")
    c.equal(delta(after, before, "cinch_items"), SETS, "cinch_items grew by the keys set")
    c.equal(delta(after, before, "cinch_items_stored_total"), SETS, "cinch_items_stored_total")
    c.equal(delta(after, before, "cinch_request_duration_seconds_count", command="set"), SETS,
            "latency histogram: one set observation per set")
    c.equal(delta(after, before, "cinch_request_duration_seconds_count", command="get"),
            SETS + MISSING + 1 + 1, "latency histogram: one get observation per get request")
    c.check(delta(after, before, "cinch_request_duration_seconds_sum", command="get") > 0,
            "latency histogram: the get sum grew")
    c.equal(delta(after, before, "cinch_connections_total"), 1, "one connection accepted")
    # A connection closed before (the harness's readiness probe) leaves the count once the
    # server has seen it close: wait for that event rather than race it.
    end = time.monotonic() + 10
    while value(after, "cinch_current_connections") != 2 and time.monotonic() < end:
        time.sleep(0.05)
        after, _ = scrape(c, server)
    c.equal(value(after, "cinch_current_connections"), 2, "two memcached connections open")
    c.check(delta(after, before, "cinch_item_bytes") >= SETS * (len(value_bytes) + 5),
            "cinch_item_bytes grew by at least the keys and values")
    # The build cache over HTTP; a scrape counts itself among the HTTP requests.
    import hashlib
    blob = b"a build output"
    path = "/cas/" + hashlib.sha256(blob).hexdigest()
    c.equal(curl(server, path, "PUT", blob)[0], 200, "PUT a CAS blob")
    c.equal(curl(server, path)[2], blob, "GET it back")
    c.equal(curl(server, "/cas/" + "0" * 64)[0], 404, "GET an absent blob")
    latest, _ = scrape(c, server)
    c.equal(delta(latest, after, "cinch_http_puts_total"), 1, "HTTP puts +1")
    c.equal(delta(latest, after, "cinch_http_get_hits_total"), 1, "HTTP hits +1")
    c.equal(delta(latest, after, "cinch_http_get_misses_total"), 1, "HTTP misses +1")
    c.equal(delta(latest, after, "cinch_buildcache_cas_stored_total"), 1, "build cache: stored")
    c.equal(delta(latest, after, "cinch_buildcache_cas_hits_total"), 1, "build cache: a hit")
    c.equal(delta(latest, after, "cinch_buildcache_cas_misses_total"), 1, "build cache: a miss")
    c.equal(delta(latest, after, "cinch_http_requests_total"), 4,
            "cinch_http_requests_total: 3 requests and the scrape")
    mc.close()
    other.close()


def check_concurrent(c, server):
    """Scrapes while 4 clients run on both workers: every exposition parses, counters never go
    down from one scrape to the next, and the totals end exact."""
    import threading
    clients, per_client = 4, 300
    before, _ = scrape(c, server)
    errors = []

    def run(n):
        try:
            mc = client(server)
            for i in range(per_client):
                mc.set(b"c%d:%d" % (n, i), b"x" * 20)
                mc.get(b"c%d:%d" % (n, i))
            mc.close()
        except Exception as e:  # a client error is a failure of this check
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    scrapes, monotonic = [], True
    while any(t.is_alive() for t in threads) and len(scrapes) < 200:
        samples, _ = scrape(c, server)
        if scrapes:
            for name in ("cinch_gets_total", "cinch_sets_total", "cinch_get_hits_total"):
                monotonic = monotonic and value(samples, name) >= value(scrapes[-1], name)
        scrapes.append(samples)
    for t in threads:
        t.join()
    after, _ = scrape(c, server)
    c.equal(errors, [], "concurrent clients: no error")
    c.check(monotonic, "counters never go down between scrapes (%d scrapes)" % len(scrapes))
    c.equal(delta(after, before, "cinch_sets_total"), clients * per_client, "concurrent sets")
    c.equal(delta(after, before, "cinch_get_hits_total"), clients * per_client, "concurrent hits")
    c.equal(delta(after, before, "cinch_request_duration_seconds_count", command="set"),
            clients * per_client, "concurrent set observations")


def stats_of(server):
    with server.conn() as conn:
        general = conn.stats()
        general.update(conn.stats(b"cinch"))
    return general


def check_same_as_stats(c, server):
    stats = stats_of(server)
    samples, _ = scrape(c, server)
    for metric, stat in SAME_AS_STATS.items():
        c.equal(value(samples, metric), float(stats[stat]), "%s is stats %s" % (metric, stat))
    c.equal(value(samples, "cinch_store_memory_limit_bytes"), float(stats["memory_limit"]),
            "cinch_store_memory_limit_bytes is stats cinch memory_limit")
    with open("/proc/%d/statm" % server.pid) as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    got = value(samples, "cinch_resident_memory_bytes")
    c.check(got is not None and 0.75 * rss <= got <= 1.25 * rss,
            "cinch_resident_memory_bytes is the process's RSS", "%r vs %d" % (got, rss))
    c.equal(value(samples, "cinch_info", version=stats["version"]), 1.0, "cinch_info{version}")


# ----------------------------------------------------------------------------- tenants, tier

TENANTS = {'ta': "pa", 'we"ird\\name': "pw"}


def login(server, user, password):
    mc = client(server)
    mc.set(b"auth", ("%s %s" % (user, password)).encode())  # memcached's text authentication
    return mc


def check_tenants_and_tier(c, args, tmp):
    auth = os.path.join(tmp, "users")
    with open(auth, "w") as f:
        for user, password in TENANTS.items():
            f.write("%s:%s:8\n" % (user, password))
        f.write("alice:secret\n")
    tier = os.path.join(tmp, "tier")
    extra = ["-Y", auth, "-o", "ext_path=%s:64m" % tier]
    with MetricsServer(args.server, SERVER_ARGS + extra) as server:
        status, headers, _ = curl(server, "/metrics")
        c.check(status == 401 and headers.get("www-authenticate", "").startswith("Basic "),
                "-Y: /metrics without credentials: 401 with a Basic challenge",
                repr((status, headers)))
        c.equal(curl(server, "/metrics", credentials="alice:wrong")[0], 401,
                "-Y: a wrong password: 401")
        c.equal(curl(server, "/metrics", credentials="ta:" + TENANTS["ta"])[0], 403,
                "-Y: a tenant's credentials: 403")
        c.equal(curl(server, "/cas/" + "0" * 64)[0], 401, "-Y: the build cache asks too")
        server.credentials = "alice:secret"
        ta = login(server, "ta", TENANTS["ta"])
        weird = login(server, 'we"ird\\name', TENANTS['we"ird\\name'])
        alice = login(server, "alice", "secret")
        before, families = scrape(c, server)
        c.equal(families.get("cinch_tenant_items"), "gauge", "per-tenant family present")
        c.equal(families.get("cinch_tier_capacity_bytes"), "gauge", "file tier family present")
        c.equal(value(before, "cinch_tier_capacity_bytes"), float(64 << 20),
                "cinch_tier_capacity_bytes is the tier's size")
        c.equal(value(before, "cinch_tenant_limit_bytes", tenant="ta"), float(8 << 20),
                "the tenant's quota")
        for i in range(30):
            ta.set(b"k%d" % i, b"x" * 50)
        for i in range(7):
            weird.set(b"k%d" % i, b"y")
        alice.set(b"k0", b"z")
        for i in range(30):
            ta.get(b"k%d" % i)
        for i in range(5):
            ta.get(b"no%d" % i)
        weird.get(b"k0")
        after, _ = scrape(c, server)
        c.equal(delta(after, before, "cinch_tenant_items", tenant="ta"), 30, "ta: items")
        c.equal(delta(after, before, "cinch_tenant_items", tenant='we"ird\\name'), 7,
                "a name with a quote and a backslash: its items, label escaped")
        c.equal(delta(after, before, "cinch_tenant_get_hits_total", tenant="ta"), 30, "ta: hits")
        c.equal(delta(after, before, "cinch_tenant_get_misses_total", tenant="ta"), 5,
                "ta: misses")
        c.equal(delta(after, before, "cinch_tenant_get_hits_total", tenant='we"ird\\name'), 1,
                "the other tenant: its hit")
        c.equal(value(after, "cinch_tenant_items", tenant="alice"), None,
                "a user without a quota has no tenant series")
        c.equal(delta(after, before, "cinch_items"), 30 + 7 + 1, "cinch_items counts them all")
        for mc in (ta, weird, alice):
            mc.close()


def main(args):
    harness.skip_unless_cinch(args, "/metrics")
    c = harness.Checker(args.verbose)
    with MetricsServer(args.server, SERVER_ARGS) as server:
        for check in (check_format, check_traffic, check_same_as_stats, check_concurrent):
            check(c, server)
            if not c.check(server.alive(), "server alive after %s" % check.__name__,
                           server.log()[-2000:]):
                return c.finish()
    with tempfile.TemporaryDirectory(prefix="cinch-metrics-") as tmp:
        check_tenants_and_tier(c, args, tmp)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=120)
