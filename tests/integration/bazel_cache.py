#!/usr/bin/env python3
"""Debian's Bazel 4 (bazel-bootstrap) builds a generated workspace against cinchd as its remote
cache, offline (bazel_workspace.py describes the workspace: 40 genrules with dependencies and
outputs from 16 B to 1.5 MiB, two actions with the same output, an output directory, a C++
binary). One Bazel server serves every build; each build follows a `bazel clean`, so all it
does not get from the cache it runs.

  http:      cinchd --http-port --grpc-port: a build over http:// runs every action and
             uploads; after a clean the next build has every action as a remote cache hit and
             the same outputs (sha256 of every file under bazel-bin).
             The same with the URL's path /cinch/ci (an instance name, ignored).
  cross:     after a clean, a build over grpc:// (instance name cinch/ci) against the same
             cinchd has every action as a hit: what was uploaded over HTTP is read over gRPC.
  grpc:      a fresh cinchd --grpc-port: one build uploads over gRPC, the next has every action
             as a hit, the outputs the same.
  eviction:  cinchd -m 8 (room for ~3.4 MB; the outputs are ~5.3 MB), over http:// and over
             grpc://: a first build uploads everything (and the cache evicts); the second,
             through a recording proxy (cache_proxy.py) and uploading nothing, still succeeds
             with fewer hits and the same outputs, sees action-result misses and no CAS read
             miss: no action result whose outputs were evicted is served. (Bazel 4 would
             survive one, running the action itself, so only the traffic shows it.)

Exits 77 (skipped) when Bazel is not installed or the server is memcached. Build times are
printed (the first includes Bazel's server start and analysis).
"""

import contextlib
import os
import tempfile

import bazel_workspace
import cache_proxy
import harness

MAIN_ARGS = ["-m", "128", "-I", "2m"]  # -I fits the 1.5 MiB outputs
# Room for ~3.4 MB of the ~5.3 MB of outputs. 64 KiB segments (not 1 MiB: 4 of them at -m 8)
# make the engine evict oldest-first at a fine grain, so the blob //gen:same_early and
# //gen:same_late share is gone while same_late's action result stays (bazel_workspace.py);
# without the action-result check its second build reads that blob and misses, 6 runs of 6.
EVICT_ARGS = ["-m", "8", "-I", "2m", "-o", "segment_size=64k"]


def extra_args(p):
    p.add_argument("--bazel", default=bazel_workspace.BAZEL, help="the bazel binary")
    p.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    p.add_argument("--protocols", default="http,grpc",
                   help="front ends to test, by hand: http, grpc or both (default)")


class Scenario:
    """Builds against one cinchd and checks them against the reference outputs."""

    def __init__(self, bazel, ws, checker):
        self.bazel, self.ws, self.c = bazel, ws, checker
        self.reference = None  # output hashes of the first build
        self.actions = None  # actions (not internal) a build has

    def build(self, what, url, *options):
        self.bazel.clean()
        b = self.bazel.build("--remote_cache=" + url, "--remote_upload_local_results", *options)
        self.c.note("%-34s %5.1f s  %s" % (what, b.seconds, b.summary()))
        ok = self.c.check(b.code == 0, "%s: bazel build succeeds" % what,
                          "exit %d:\n%s" % (b.code, b.tail()))
        ok = ok and self.c.check(b.processes is not None, "%s: summary line" % what, b.tail())
        return b if ok else None

    def same_outputs(self, what):
        got = bazel_workspace.output_hashes(self.ws)
        if self.reference is None:
            self.reference = got
            return self.c.check(len(got) >= bazel_workspace.GENRULES,
                                "%s: outputs present" % what, "%d files" % len(got))
        diff = sorted(k for k in set(got) | set(self.reference)
                      if got.get(k) != self.reference.get(k))
        return self.c.check(not diff, "%s: outputs byte-identical to the first build's" % what,
                            "%d differ: %s" % (len(diff), ", ".join(diff[:10])))

    def uploads(self, what, url):
        """A build against an empty cache: no hits, every action runs (and is uploaded)."""
        b = self.build(what, url)
        if b is None:
            return False
        if self.actions is None:
            self.actions = b.executed()
        self.c.equal(b.hits(), 0, "%s: no remote cache hits from an empty cache" % what)
        self.c.equal(b.executed(), self.actions, "%s: actions run" % what)
        return self.same_outputs(what)

    def all_hits(self, what, url, *options):
        b = self.build(what, url, *options)
        if b is None:
            return False
        self.c.check(b.hits() == self.actions and b.executed() == self.actions,
                     "%s: every action is a remote cache hit" % what,
                     "%s; %d actions" % (b.summary(), self.actions))
        return self.same_outputs(what)

    def evicted(self, what, proxy):
        """A build through a recording proxy in front of a cache that evicted outputs, with
        nothing uploaded (so nothing is evicted while it runs): it still succeeds, with fewer
        hits; each action result the cache serves has its outputs (no CAS read misses)."""
        b = self.build(what, proxy.url, "--noremote_upload_local_results")
        if b is None:
            return False
        t = traffic(proxy.records)
        self.c.note("%-34s %s" % ("", ", ".join("%s %d" % kv for kv in t.items())))
        self.c.check(b.executed() == self.actions and b.hits() < self.actions,
                     "%s: fewer remote cache hits than actions (evicted)" % what,
                     "%s; %d actions" % (b.summary(), self.actions))
        self.c.check(t["ac_missing"] > 0 and t["uploads"] == 0 and t["errors"] == 0,
                     "%s: action results missed, nothing uploaded, no errors" % what, str(t))
        self.c.equal(t["cas_missing"], 0,
                     "%s: no action result served whose outputs are gone (CAS read misses)" % what)
        self.c.equal(b.hits(), t["ac_found"], "%s: every action result served is a hit" % what)
        return self.same_outputs(what)


class Cache:
    """A running cinchd: .server, .port[name] and .url[name] for "http" / "grpc"."""

    def __init__(self, server, ports):
        self.server, self.port = server, ports
        self.url = {name: "%s://127.0.0.1:%d" % (name, p) for name, p in ports.items()}

    def proxy(self, name):
        """A recording proxy in front of front end `name` (cache_proxy.py)."""
        kind = cache_proxy.HttpProxy if name == "http" else cache_proxy.GrpcProxy
        return kind(self.port[name])


@contextlib.contextmanager
def cinchd(server, args, protocols):
    """A cinchd serving `protocols` ("http", "grpc") on free ports, as a Cache."""
    with harness.FrontEndServer(server, args, protocols) as s:
        yield Cache(s, s.ports)


def traffic(records):
    """Counts of what a recording proxy saw, in either protocol's terms."""
    out = dict.fromkeys(["ac_found", "ac_missing", "cas_read", "cas_missing", "uploads",
                         "errors"], 0)
    for r in records:
        if len(r) == 3:  # HTTP: (method, path, status)
            method, path, status = r
            kind = path.rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
            if method == "PUT":
                out["uploads"] += 1
            elif kind == "ac":
                out["ac_found" if status == 200 else "ac_missing"] += 1
            elif kind == "cas":
                out["cas_read"] += 1
                out["cas_missing"] += status == 404
            if status not in (200, 404):
                out["errors"] += 1
        else:  # gRPC: (method, status code name)
            method, code = r
            name = method.rsplit("/", 1)[-1]
            if name in ("Write", "UpdateActionResult", "BatchUpdateBlobs"):
                out["uploads"] += 1
            elif name == "GetActionResult":
                out["ac_found" if code == "OK" else "ac_missing"] += 1
            elif name in ("Read", "BatchReadBlobs"):
                out["cas_read"] += 1
                out["cas_missing"] += code == "NOT_FOUND"
            if code not in ("OK", "NOT_FOUND"):
                out["errors"] += 1
    return out


def main(args):
    harness.skip_unless_cinch(args, "build cache")
    if not os.path.exists(args.bazel):
        print("SKIPPED: %s is not installed (Debian package bazel-bootstrap; "
              "scripts/setup.sh installs it)" % args.bazel, flush=True)
        return harness.SKIP
    c = harness.Checker(args.verbose)
    root = tempfile.mkdtemp(prefix="cinch-bazel-")
    ws = bazel_workspace.write(os.path.join(root, "src"))
    bazel = bazel_workspace.Bazel(ws, os.path.join(root, "src", "mock_repos"),
                                  os.path.join(root, "bazel"), args.bazel)
    try:
        run_scenarios(args.server, args.protocols.split(","), bazel, ws, c)
    finally:
        bazel.shutdown()
        if args.keep:
            print("kept %s" % root)
        else:
            bazel_workspace.remove_tree(root)
    return c.finish()


def run_scenarios(server, protocols, bazel, ws, c):
    sc = Scenario(bazel, ws, c)
    if "http" in protocols:
        with cinchd(server, MAIN_ARGS, protocols) as cache:
            if not sc.uploads("http: first build", cache.url["http"]):
                return
            sc.all_hits("http: second build", cache.url["http"])
            # Instance names are ignored (docs/http-cache.md, src/reapi/services.h): the same
            # entries under a path prefix and under a REAPI instance name.
            sc.all_hits("http: instance prefix /cinch/ci", cache.url["http"] + "/cinch/ci")
            if "grpc" in protocols:
                sc.all_hits("cross: grpc build after http", cache.url["grpc"],
                            "--remote_instance_name=cinch/ci")
    if "grpc" in protocols:
        with cinchd(server, MAIN_ARGS, ["grpc"]) as cache:
            if not sc.uploads("grpc: first build", cache.url["grpc"]):
                return
            sc.all_hits("grpc: second build", cache.url["grpc"])
    for proto in protocols:
        with cinchd(server, EVICT_ARGS, [proto]) as cache:
            sc.uploads("eviction %s: first build" % proto, cache.url[proto])
            with cache.proxy(proto) as proxy:
                sc.evicted("eviction %s: second build" % proto, proxy)
            c.check(cache.server.alive(), "eviction %s: cinchd still running" % proto,
                    cache.server.log()[-2000:])


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__, extra_args), time_limit=540)
