#!/usr/bin/env python3
"""libmemcached's conformance suite against the server: every test, ASCII and binary protocol.

Each of its tests prints "[pass]", "[fail]" or "[skipped]"; any failure, a non-zero exit status
or no passing test at all fails this script. memccapable flushes the server it is given.
"""

import re
import shutil
import subprocess

import harness

SERVER_ARGS = ["-m", "64", "-t", "2"]


def main(args):
    c = harness.Checker(args.verbose)
    tool = shutil.which("memccapable")
    if not tool:
        c.check(False, "memccapable is installed (Debian package libmemcached-tools)")
        return c.finish()
    with harness.Server(args.server, SERVER_ARGS) as server:
        cmd = [tool, "-t", "5", "-h", "127.0.0.1", "-p", str(server.port)]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=45)
        except subprocess.TimeoutExpired as e:
            c.check(False, "memccapable finished within 45 s", (e.stdout or "")[-2000:])
            return c.finish()
        out = run.stdout + run.stderr
        results = re.findall(r"^(.*?)\s*\[(pass|fail|skipped)\]\s*$", out, re.M)
        for name, status in results:
            if status == "skipped":
                c.skip(name, "skipped by memccapable")
            else:
                c.check(status == "pass", "memccapable: %s" % name)
        c.check(any(s == "pass" for _, s in results), "memccapable ran tests", out[-2000:])
        c.check(run.returncode == 0, "memccapable exit status 0",
                "exit %d; output:\n%s" % (run.returncode, out[-2000:]))
        c.check(server.alive(), "server still running after memccapable", server.log()[-2000:])
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__))
