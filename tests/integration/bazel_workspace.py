"""A generated Bazel workspace and a driver for Debian's Bazel 4 (bazel-bootstrap), offline.

Used by bazel_cache.py (the test) and bench/bazel_build.sh (the benchmark). Nothing here is
committed output: write() generates the workspace into a temporary directory.

The workspace (everything deterministic, so a rebuilt output equals the cached one):

  //gen:gNN    40 genrules; each runs gen.py, which writes a header (the rule's name and the
               sha256 of its inputs) followed by seeded random bytes, cut to the rule's size:
               outputs of 16..128 B (9), 1..64 KiB (26) and 100 KiB..1.5 MiB (5). Each rule
               depends on 1 to 3 earlier ones; g35 fans in 12 of them. Some actions print to
               stdout and stderr, so their action results reference those blobs too.
  //gen:same_early, //gen:same_late: two actions with the same 256 KiB output (see PHASE2).
  //gen:tree   an output directory (a Starlark rule's declare_directory): files of mixed sizes
               in a subdirectory tree, so an action result holds a Tree.
  //cc:hello   a cc_library and a cc_binary (2 compiles, 1 link) with Debian's gcc; rules_cc and
               rules_java point at pass-through defs.bzl repositories written here (like
               bazel-bootstrap-source's mock_repos), so no repository is fetched.
  //gen:tool   a genrule that runs //cc:hello.

Bazel runs with its own output root under the temporary directory, no user or workspace rc
files (Debian's /etc/bazel/bazelrc stays: it points at the installed JDK), and one server for
all builds, stopped by shutdown() (and killed by pid if it does not go).
"""

import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

BAZEL = "/usr/bin/bazel"

GENRULES = 40
# Built in two phases, so that a cache too small for the outputs (bazel_cache.py's eviction
# case) holds an action result whose output is gone: //gen:same_early (no dependencies) and
# //gen:same_late write the same bytes, one CAS blob. same_late runs after phase 1 (g00..g35,
# g35 fanning in 12 of them), while the blob is still cached, so its upload finds it present
# and stores nothing; phase 2 (g36..g39, the largest outputs, after same_late) then evicts
# the oldest entries, that blob among them, but not same_late's newer action result.
FAN_IN_RULE, FAN_IN = 35, 12
PHASE2 = range(36, GENRULES)
LARGE_SIZES = {10: 1024 << 10, 36: 1536 << 10, 37: 800 << 10, 38: 400 << 10, 39: 100 << 10}
SHARED_SIZE = 256 << 10
TARGETS = ["//gen:everything", "//cc:hello"]

GEN_PY = r'''"""gen.py NAME SIZE OUT [INPUT...]: OUT gets SIZE bytes: a header naming NAME and the
inputs' sha256, then bytes seeded by NAME. gen.py --dir NAME OUTDIR INPUT...: a small tree."""
import hashlib, os, random, sys


def content(name, size, inputs):
    h = hashlib.sha256()
    for path in inputs:
        with open(path, "rb") as f:
            h.update(f.read())
    head = ("%s %s\n" % (name, h.hexdigest())).encode()
    return (head + random.Random(name).randbytes(max(0, size - len(head))))[:size]


def main(argv):
    if argv[0] == "--dir":
        name, out, inputs = argv[1], argv[2], argv[3:]
        for i, size in enumerate([40, 100, 3000, 70000]):
            sub = os.path.join(out, "sub%d" % (i % 2), "leaf" if i == 3 else "")
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, "f%d.bin" % i), "wb") as f:
                f.write(content("%s/%d" % (name, i), size, inputs))
        return
    name, size, out, inputs = argv[0], int(argv[1]), argv[2], argv[3:]
    with open(out, "wb") as f:
        f.write(content(name, size, inputs))
    if name.endswith("3"):
        print("%s: %d bytes" % (name, size))  # stdout and stderr blobs in the action result
        print("%s: a note on stderr" % name, file=sys.stderr)


main(sys.argv[1:])
'''

DEFS_BZL = '''def _gen_dir_impl(ctx):
    out = ctx.actions.declare_directory(ctx.label.name)
    ctx.actions.run(
        executable = ctx.attr.python,
        arguments = [ctx.file.gen.path, "--dir", ctx.label.name, out.path] +
                    [f.path for f in ctx.files.srcs],
        inputs = ctx.files.srcs + [ctx.file.gen],
        outputs = [out],
        mnemonic = "GenDir",
    )
    return [DefaultInfo(files = depset([out]))]

gen_dir = rule(
    implementation = _gen_dir_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = True),
        "gen": attr.label(allow_single_file = True),
        "python": attr.string(),
    },
)
'''

LIB_H = '''#pragma once
#include <string>
std::string Greeting(int n);
'''
LIB_CC = '''#include "cc/lib.h"
std::string Greeting(int n) {
  std::string s = "hello from a cached binary:";
  for (int i = 0; i < n; ++i) s += " " + std::to_string(i * i);
  return s;
}
'''
MAIN_CC = '''#include <cstdio>
#include "cc/lib.h"
int main() { std::puts(Greeting(12).c_str()); }
'''

MOCK_RULES = {
    "rules_cc/cc/defs.bzl": ["cc_binary", "cc_library", "cc_test", "cc_toolchain",
                             "cc_toolchain_suite", "cc_proto_library", "objc_library"],
    "rules_java/java/defs.bzl": ["java_binary", "java_library", "java_test", "java_import",
                                 "java_toolchain", "java_runtime", "java_plugin",
                                 "java_proto_library"],
}


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _size(i):
    """Output size of genrule i: five large, every 4th tiny (<= 128 B), the rest 1..64 KiB."""
    if i in LARGE_SIZES:
        return LARGE_SIZES[i]
    rng = random.Random(1000 + i)
    return rng.randint(16, 128) if i % 4 == 0 else rng.randint(1 << 10, 64 << 10)


def _deps(i):
    """Labels genrule i depends on."""
    rng = random.Random(i)
    if i == 0:
        return []
    if i in PHASE2:
        return [":same_late"]
    if i == FAN_IN_RULE:
        picks = rng.sample(range(i), FAN_IN)
    else:
        picks = rng.sample(range(i), min(i, rng.randint(1, 3)))
    return [":g%02d" % d for d in sorted(picks)]


def write(root, python=sys.executable):
    """Writes the workspace to root/ws and the mock repositories to root/mock_repos.

    Returns the workspace directory."""
    ws = os.path.join(root, "ws")
    mocks = os.path.join(root, "mock_repos")
    for path, rules in MOCK_RULES.items():
        _write(os.path.join(mocks, path),
               "".join("def %s(**kwargs):\n    native.%s(**kwargs)\n\n" % (r, r) for r in rules))
        _write(os.path.join(mocks, path.split("/")[0], "WORKSPACE"), "")
        _write(os.path.join(mocks, os.path.dirname(path), "BUILD"), "")
    _write(os.path.join(ws, "WORKSPACE"), 'workspace(name = "cinch_bazel_test")\n')
    _write(os.path.join(ws, "gen", "gen.py"), GEN_PY)
    _write(os.path.join(ws, "gen", "defs.bzl"), DEFS_BZL)
    rules = ['load(":defs.bzl", "gen_dir")\n']
    gen = "%s $(location gen.py)" % python
    for i in range(GENRULES):
        rules.append('genrule(name = "g%02d", srcs = [%s], outs = ["g%02d.bin"], '
                     'tools = ["gen.py"],\n        cmd = "%s g%02d %d $@ $(SRCS)")\n' %
                     (i, ", ".join('"%s"' % d for d in _deps(i)), i, gen, i, _size(i)))
    for name, srcs in (("same_early", ""), ("same_late", '":g%02d"' % FAN_IN_RULE)):
        # The same bytes: gen.py is not given the inputs.
        rules.append('genrule(name = "%s", srcs = [%s], outs = ["%s.bin"], tools = ["gen.py"],'
                     '\n        cmd = "%s shared %d $@")\n' % (name, srcs, name, gen, SHARED_SIZE))
    rules.append('gen_dir(name = "tree", srcs = [":g%02d", ":g%02d"], gen = "gen.py", '
                 'python = "%s")\n' % (PHASE2[-2], PHASE2[-1], python))
    rules.append('genrule(name = "tool", outs = ["tool.txt"], tools = ["//cc:hello"], '
                 'cmd = "$(location //cc:hello) > $@")\n')
    rules.append('filegroup(name = "everything", srcs = [%s, ":same_early", ":same_late", '
                 '":tree", ":tool"])\n' %
                 ", ".join('":g%02d"' % i for i in range(GENRULES)))
    _write(os.path.join(ws, "gen", "BUILD"), "".join(rules))
    _write(os.path.join(ws, "cc", "lib.h"), LIB_H)
    _write(os.path.join(ws, "cc", "lib.cc"), LIB_CC)
    _write(os.path.join(ws, "cc", "main.cc"), MAIN_CC)
    _write(os.path.join(ws, "cc", "BUILD"),
           'load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library")\n'
           'cc_library(name = "lib", srcs = ["lib.cc"], hdrs = ["lib.h"])\n'
           'cc_binary(name = "hello", srcs = ["main.cc"], deps = [":lib"],\n'
           '          visibility = ["//visibility:public"])\n')
    return ws


def total_output_bytes():
    """Bytes of the genrules' outputs (without the tree, the tool's and the C++ outputs)."""
    return sum(_size(i) for i in range(GENRULES)) + 2 * SHARED_SIZE


# ----------------------------------------------------------------------------- the summary line

_SUMMARY = re.compile(r"^INFO: (\d+) process(?:es)?(?:: (.*?))?\.?\s*$", re.M)


def parse_processes(output):
    """Bazel's "INFO: 49 processes: 4 internal, 45 remote cache hit." as
    {"total": 49, "internal": 4, "remote cache hit": 45}; None without such a line.
    The kinds are what Bazel 4 prints: internal, remote cache hit, linux-sandbox,
    processwrapper-sandbox, local, worker, remote, disk cache hit."""
    found = _SUMMARY.findall(output)
    if not found:
        return None
    total, kinds = found[-1]
    out = {"total": int(total)}
    for part in filter(None, (p.strip() for p in (kinds or "").split(","))):
        m = re.match(r"(\d+) (.+)$", part)
        if not m:
            return None
        out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(1))
    return out


def executed(processes):
    """Actions that ran (not internal): every process kind but internal."""
    return sum(v for k, v in processes.items() if k not in ("total", "internal"))


# ----------------------------------------------------------------------------- outputs


def output_hashes(ws):
    """{path under bazel-bin: sha256} of every regular file the build left (symlinks, e.g. the
    runfiles tree, are skipped: they point at files hashed under their own path)."""
    top = os.path.realpath(os.path.join(ws, "bazel-bin"))
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                out[os.path.relpath(path, top)] = hashlib.sha256(f.read()).hexdigest()
    return out


# ----------------------------------------------------------------------------- Bazel


class Build:
    def __init__(self, code, output, seconds):
        self.code, self.output, self.seconds = code, output, seconds
        self.processes = parse_processes(output)

    def hits(self):
        return (self.processes or {}).get("remote cache hit", 0)

    def executed(self):
        return executed(self.processes or {})

    def summary(self):
        line = _SUMMARY.findall(self.output)
        return ("INFO: %s processes: %s" % line[-1]) if line else "(no summary line)"

    def tail(self, lines=25):
        return "\n".join(self.output.splitlines()[-lines:])


class Bazel:
    """One Bazel server for `ws`, its output root under `root`; always call shutdown()."""

    def __init__(self, ws, mocks, root, bazel=BAZEL, timeout=300):
        self.ws, self.timeout = ws, timeout
        self.output_base = os.path.join(root, "output_base")
        self.startup = [bazel, "--output_user_root=" + os.path.join(root, "output_user_root"),
                        "--output_base=" + self.output_base, "--nohome_rc", "--noworkspace_rc",
                        "--max_idle_secs=300"]
        self.options = ["--nosandbox_debug", "--color=no", "--curses=no",
                        "--show_progress_rate_limit=30",
                        "--override_repository=rules_cc=" + os.path.join(mocks, "rules_cc"),
                        "--override_repository=rules_java=" + os.path.join(mocks, "rules_java")]

    def run(self, *args, timeout=None):
        """(exit code, combined output) of `bazel STARTUP ARGS` in the workspace."""
        proc = subprocess.run(self.startup + list(args), cwd=self.ws, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout or self.timeout)
        return proc.returncode, proc.stdout.decode("utf-8", "replace")

    def build(self, *options):
        t0 = time.monotonic()
        code, out = self.run("build", *(self.options + list(options) + ["--"] + TARGETS))
        return Build(code, out, time.monotonic() - t0)

    def clean(self):
        code, out = self.run("clean")
        if code != 0:
            raise RuntimeError("bazel clean failed (%d):\n%s" % (code, out))

    def server_pid(self):
        try:
            with open(os.path.join(self.output_base, "server", "server.pid.txt")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def shutdown(self):
        """Stops the server: `bazel shutdown`, then SIGKILL by pid if it is still there."""
        pid = self.server_pid()
        try:
            self.run("shutdown", timeout=60)
        except (subprocess.SubprocessError, OSError):
            pass
        if pid is None:
            return
        end = time.monotonic() + 10
        while time.monotonic() < end and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False


def remove_tree(root):
    """rmtree that also removes the read-only directories Bazel leaves in its output base."""
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            path = os.path.join(dirpath, d)
            if not os.path.islink(path):
                try:
                    os.chmod(path, 0o755)
                except OSError:
                    pass
    shutil.rmtree(root, ignore_errors=True)
