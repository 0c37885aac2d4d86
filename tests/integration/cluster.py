"""Helpers for the scale-out tests (scale_*.py): several servers and a proxy in front of them.

  servers(count, path, args)   `count` servers started in turn (harness.Server, or the class
                               given as `kind`), as a list; all stopped when the `with` ends
  Proxy(argv_for(port), name)  any proxy program listening on a free loopback port, run like a
                               harness.Server (stopped by SIGTERM, then SIGKILL, always; dies
                               with the test): `argv_for(port)` writes its configuration for
                               that port and returns its command line
  holders(servers, key)        which servers hold `key`, asked of each directly
  spread(servers, keys)        how many of `keys` each server holds

Not thread-safe.
"""

import contextlib
import os
import shutil

import harness


def find_program(name, package):
    """The path of `name` (PATH, then /usr/sbin), or None after saying what installs it."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        print("FAIL: %s is not installed (Debian package %s; scripts/setup.sh installs it)" %
              (name, package), flush=True)
    return path


@contextlib.contextmanager
def servers(count, path, args, kind=harness.Server):
    """`count` servers `kind(path, args)` on ports of their own, started in turn, as a list.
    All are stopped when the `with` block ends: those the test stopped or killed itself too
    (stop() again is harmless), and those started before one that failed to."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(kind(path, args)) for _ in range(count)]


class Proxy(harness.Server):
    """A proxy process on a free loopback port; ready once it accepts connections."""

    def __init__(self, argv_for, name):
        super().__init__(name)
        self.argv_for = argv_for

    def argv(self, port):
        return self.argv_for(port)

    def __str__(self):
        return "%s on port %s" % (self.path, self.port)


def holders(servers, key):
    """The indexes of `servers` whose store holds `key` (a direct get on each)."""
    found = []
    for i, s in enumerate(servers):
        if not s.alive():
            continue
        with s.conn() as c:
            if c.get(key) is not None:
                found.append(i)
    return found


def spread(servers, keys):
    """[keys held by server 0, by server 1, ...] and the keys held by no or several servers."""
    counts = [0] * len(servers)
    misplaced = []
    conns = [s.conn() for s in servers]
    try:
        for key in keys:
            where = [i for i, c in enumerate(conns) if c.get(key) is not None]
            if len(where) == 1:
                counts[where[0]] += 1
            else:
                misplaced.append((key, where))
    finally:
        for c in conns:
            c.close()
    return counts, misplaced


def write_file(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path
