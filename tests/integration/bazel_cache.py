#!/usr/bin/env python3
"""Debian's Bazel 4 (bazel-bootstrap) builds a generated workspace against cinchd as its remote
cache, offline (bazel_workspace.py describes the workspace: 40 genrules with dependencies and
outputs from 16 B to 2 MiB, an output directory, a C++ binary). One Bazel server serves every
build; each build follows a `bazel clean`, so all it does not get from the cache it runs.

  http:      cinchd --http-port --grpc-port: a build over http:// runs every action and
             uploads; after a clean the next build has every action as a remote cache hit and
             the same outputs (sha256 of every file under bazel-bin).
  cross:     after a clean, a build over grpc:// against the same cinchd has every action as a
             hit: the blobs and action results uploaded over HTTP are read over gRPC.
  grpc:      a fresh cinchd --grpc-port: one build uploads over gRPC, the next has every action
             as a hit, the outputs the same.
  eviction:  cinchd -m 8 (room for ~4 MB, the outputs are ~6.5 MB), over http:// and over
             grpc://: the second build still succeeds, with fewer hits, and the same outputs;
             an action result whose outputs were evicted is a miss, and the action runs again.

Exits 77 (skipped) when Bazel is not installed or the server is memcached. Build times are
printed (the first includes Bazel's server start and analysis).
"""

import contextlib
import os
import tempfile
import time

import bazel_workspace
import harness

MAIN_ARGS = ["-m", "128", "-I", "4m"]
# -I 4m fits the 2 MiB outputs; -I may be at most half of -m.
EVICT_ARGS = ["-m", "8", "-I", "4m"]


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
        self.times = []

    def build(self, what, url):
        self.bazel.clean()
        b = self.bazel.build("--remote_cache=" + url, "--remote_upload_local_results")
        self.times.append((what, b.seconds))
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
        diff = sorted(k for k in set(got) | set(self.reference) if got.get(k) != self.reference.get(k))
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

    def all_hits(self, what, url):
        b = self.build(what, url)
        if b is None:
            return False
        self.c.check(b.hits() == self.actions and b.executed() == self.actions,
                     "%s: every action is a remote cache hit" % what,
                     "%s; %d actions" % (b.summary(), self.actions))
        return self.same_outputs(what)

    def fewer_hits(self, what, url):
        b = self.build(what, url)
        if b is None:
            return False
        self.c.check(b.executed() == self.actions and b.hits() < self.actions,
                     "%s: fewer remote cache hits than actions (evicted)" % what,
                     "%s; %d actions" % (b.summary(), self.actions))
        return self.same_outputs(what)


@contextlib.contextmanager
def cinchd(server, args, http=False, grpc=False):
    """A running cinchd with an HTTP and/or a gRPC port: yields (Server, http_url, grpc_url)."""
    ports = {}
    for name, wanted in (("http", http), ("grpc", grpc)):
        if wanted:
            ports[name] = harness.free_port()
            args = args + ["--%s-port" % name, str(ports[name])]
    with harness.Server(server, args) as s:
        for name, port in ports.items():
            end = time.monotonic() + harness.START_TIMEOUT
            while not harness.can_connect(port):
                if time.monotonic() > end or not s.alive():
                    raise harness.ServerError("%s port %d not listening:\n%s" %
                                              (name, port, s.log()[-2000:]))
                time.sleep(0.05)
        yield (s, "http://127.0.0.1:%d" % ports["http"] if http else None,
               "grpc://127.0.0.1:%d" % ports["grpc"] if grpc else None)


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
    both = "http" in protocols and "grpc" in protocols
    if "http" in protocols:
        with cinchd(server, MAIN_ARGS, http=True, grpc=both) as (s, http, grpc):
            if not sc.uploads("http: first build", http):
                return
            sc.all_hits("http: second build", http)
            if both:
                sc.all_hits("cross: grpc build after http", grpc)
    if "grpc" in protocols:
        with cinchd(server, MAIN_ARGS, grpc=True) as (s, _, grpc):
            if not sc.uploads("grpc: first build", grpc):
                return
            sc.all_hits("grpc: second build", grpc)
    for proto in protocols:
        with cinchd(server, EVICT_ARGS, **{proto: True}) as (s, http, grpc):
            sc.uploads("eviction %s: first build" % proto, http or grpc)
            sc.fewer_hits("eviction %s: second build" % proto, http or grpc)
            c.check(s.alive(), "eviction %s: cinchd still running" % proto, s.log()[-2000:])


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__, extra_args), time_limit=540)
