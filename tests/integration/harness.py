"""Shared helpers for the integration tests: run a real server on loopback and talk to it.

Every test script is `python3 X.py --server PATH [--verbose]`, where PATH is cinchd or, as the
reference, Debian's memcached (/usr/bin/memcached). A script

  * starts its servers through `Server` (a context manager: the process is always stopped, by
    SIGTERM then SIGKILL, also from atexit and from the script's own deadline),
  * records outcomes in a `Checker`, which prints every failure and a closing
    "N passed, N failed" line,
  * exits 0 when all checks passed, 1 on a failure, and 77 (ctest's SKIP_RETURN_CODE) when it
    only applies to cinchd and was given memcached.

Nothing here is thread-safe except `Conn` objects used by one thread each and `rss_kib()`.
"""

import argparse
import atexit
import ctypes
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77  # ctest's SKIP_RETURN_CODE for these tests (see CMakeLists.txt)
MEMCACHED = "/usr/bin/memcached"
START_TIMEOUT = 10.0
# Seconds a server under test gets, when a comparison runs again, for a reply memcached gave
# and it did not give within the usual limit (a loaded machine, a sanitizer).
LATE_REPLY = 30.0
# What a server's log says when one of its ports was taken (start() then tries other ports).
PORT_TAKEN = re.compile(r"(?i)address already in use|bind|failed to listen|cannot listen")

_live_servers = []  # every Server started and not yet stopped, for atexit


def is_memcached(path):
    """True when `path` names memcached (the reference), judged by its basename."""
    return os.path.basename(path).startswith("memcached")


# ----------------------------------------------------------------------------- arguments, run


def parse_args(description, extra=None):
    """Common flags: --server PATH (required) and --verbose; `extra(parser)` adds more."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--server", required=True, help="server binary: cinchd or /usr/bin/memcached")
    p.add_argument("--verbose", "-v", action="store_true")
    if extra:
        extra(p)
    args = p.parse_args()
    args.server = os.path.abspath(args.server) if os.sep in args.server else args.server
    return args


class Deadline(Exception):
    pass


def run(main, args, time_limit=58):
    """Runs main(args) -> exit code under a wall-clock limit; always stops servers; exits."""

    def on_alarm(signum, frame):
        raise Deadline("test exceeded its %d s time limit" % time_limit)

    def on_term(signum, frame):
        raise Deadline("test stopped by signal %d" % signum)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(time_limit)
    code = 1
    try:
        code = main(args)
    except Deadline as e:
        print("FAIL: %s" % e, flush=True)
        code = 1
    except Exception:  # a crash of the test itself is a failure, with its traceback
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        signal.alarm(0)
        stop_all()
    sys.stdout.flush()
    sys.exit(code)


def skip_unless_cinch(args, why="cinch-specific"):
    """Exits with SKIP when the server under test is memcached."""
    if is_memcached(args.server):
        print("SKIPPED: %s test; %s is memcached" % (why, args.server), flush=True)
        sys.exit(SKIP)


class Checker:
    """Collects pass/fail outcomes; prints each failure as it happens."""

    def __init__(self, verbose=False):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.verbose = verbose

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            if self.verbose:
                print("ok   %s" % what, flush=True)
        else:
            self.failed += 1
            print("FAIL %s%s" % (what, ("\n     " + detail) if detail else ""), flush=True)
        return ok

    def equal(self, got, want, what):
        return self.check(got == want, what, "got %r, want %r" % (got, want))

    def skip(self, what, why):
        self.skipped += 1
        print("skip %s: %s" % (what, why), flush=True)

    def note(self, text):
        print("     %s" % text, flush=True)

    def finish(self):
        line = "%d passed, %d failed" % (self.passed, self.failed)
        if self.skipped:
            line += ", %d skipped" % self.skipped
        print(line, flush=True)
        return 1 if self.failed or self.passed == 0 else 0


# ----------------------------------------------------------------------------- ports, servers


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_connect(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class ServerError(Exception):
    pass


class Server:
    """One server process on 127.0.0.1:port; use as `with Server(path, ["-m", "64"]) as s:`.

    The command line is `path -p PORT -l 127.0.0.1 -U 0 ARGS` (run as root, both also get
    `-u root`, which they require). stdout and stderr go to a temporary log, shown by log().

    A cinchd also gets `-o memory_pressure=0` unless ARGS set memory_pressure or
    `host_pressure` is true: by default cinchd shrinks its cache when the host is short of
    memory, and a test's figures must not depend on what else runs on the machine. The tests
    of that watcher ask for it (memory_pressure.py, cache_memlimit.py).
    """

    def __init__(self, path, args=(), start_timeout=START_TIMEOUT, host_pressure=False):
        self.path = path
        self.args = list(args)
        if (os.path.basename(path).startswith("cinchd") and not host_pressure and
                not any("memory_pressure" in a for a in self.args)):
            self.args += ["-o", "memory_pressure=0"]
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.returncode = None
        self._log = None

    # -- lifecycle

    def argv(self, port):
        argv = [self.path, "-p", str(port), "-l", "127.0.0.1", "-U", "0"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # both refuse to run as root without -u
        return argv + self.args

    def start(self):
        last = ""
        for _ in range(5):  # a port taken between free_port() and the server's bind: retry
            self.port = free_port()
            if self._log:
                self._log.close()
            self._log = tempfile.NamedTemporaryFile(prefix="cinch-it-", suffix=".log")
            self.proc = subprocess.Popen(self.argv(self.port), stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT,
                                         preexec_fn=_die_with_parent)
            _live_servers.append(self)
            if self._wait_ready():
                return self
            last = self.log()
            self.stop()
            if not PORT_TAKEN.search(last):
                break
        raise ServerError("server did not start: %s\n--- log ---\n%s" %
                          (" ".join(self.argv(self.port)), last))

    def _wait_ready(self):
        return self._wait_until(lambda: can_connect(self.port))

    def _wait_until(self, ready):
        """Polls ready() until it holds (True), or the process exits or start_timeout passes."""
        end = time.monotonic() + self.start_timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            if ready():
                return True
            time.sleep(0.02)
        return False

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Signals the process and waits; SIGKILL after `timeout`. Returns the exit status."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self.proc = None
        if self in _live_servers:
            _live_servers.remove(self)
        return self.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._log:
            self._log.close()
        return False

    # -- inspection

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        if not self._log:
            return ""
        with open(self._log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def rss_kib(self):
        return rss_kib(self.pid)

    def conn(self, timeout=5.0):
        return Conn(self.port, timeout)

    def __str__(self):
        return "%s on port %s" % (os.path.basename(self.path), self.port)


class FrontEndServer(Server):
    """A cinchd serving front ends beside its memcached port: each name of `front_ends`
    ("http", "grpc") on a free port of its own (--http-port, --grpc-port), .ports[name], all
    picked again whenever start() retries.

    Ready once cinchd logs each one's port (READY_LINES), which it does when every listener
    is up; it exits when one cannot bind, and start() then retries on other ports. Connecting
    proves less: the memcached port answers before the others are bound, and a port taken
    meanwhile by another process would answer for one."""

    READY_LINES = {"http": "HTTP build cache and /metrics on port %d of the same hosts",
                   "grpc": "gRPC build cache (REAPI v2, ByteStream) on port %d of the same hosts"}
    front_ends = ()

    def __init__(self, path, args=(), front_ends=None, start_timeout=START_TIMEOUT):
        super().__init__(path, args, start_timeout)
        if front_ends is not None:
            self.front_ends = tuple(front_ends)
        self.ports = {}
        self._for_port = None

    def argv(self, port):
        if self._for_port != port:
            self._for_port = port
            self.ports = {name: free_port() for name in self.front_ends}
        flags = []
        for name in self.front_ends:
            flags += ["--%s-port" % name, str(self.ports[name])]
        return super().argv(port) + flags

    def _wait_ready(self):
        lines = [self.READY_LINES[name] % self.ports[name] for name in self.front_ends]
        return super()._wait_ready() and self._wait_until(
            lambda: all(line in self.log() for line in lines))


def _die_with_parent():
    """In the child: SIGKILL it when the test dies, even by SIGKILL (a ctest timeout)."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def stop_all():
    for s in list(_live_servers):
        s.stop()


atexit.register(stop_all)


def rss_kib(pid):
    """VmRSS of `pid` in KiB from /proc/PID/status, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, TypeError, ValueError):
        return None
    return None


class MemorySampler:
    """Samples the memory of process `pid` every `period` seconds on a thread of its own, from
    start() to stop() (or through a `with` block); keeps the maximum of each figure and counts
    the samples taken.

    `read(pid)` returns {name: KiB}, or None once the process is gone (that sample is not
    counted); by default it is {"VmRSS": rss_kib(pid)}, whose maximum is .max_kib. The maxima
    may be read while sampling goes on (each is one int, replaced whole)."""

    def __init__(self, pid, period=0.02, read=None):
        self.pid, self.period = pid, period
        self.read = read or _vm_rss
        self.maxima, self.samples = {}, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            figures = self.read(self.pid)
            if figures is not None:
                for name, kib in figures.items():
                    self.maxima[name] = max(self.maxima.get(name, 0), kib)
                self.samples += 1
            self._stop.wait(self.period)

    def max(self, name):
        """The largest `name` sampled, in KiB (0 before any sample)."""
        return self.maxima.get(name, 0)

    @property
    def max_kib(self):
        """The largest VmRSS sampled with the default `read`, in KiB."""
        return self.max("VmRSS")

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def _vm_rss(pid):
    kib = rss_kib(pid)
    return None if kib is None else {"VmRSS": kib}


# ----------------------------------------------------------------------------- raw sockets


class Closed(Exception):
    pass


class Timeout(Exception):
    pass


class Conn:
    """A raw text-protocol connection with a receive buffer; one thread at a time."""

    def __init__(self, port, timeout=5.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Receives once into buf; raises Timeout at the deadline, Closed on EOF."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        poller = select.poll()  # not select(): tests may hold more than 1024 descriptors
        poller.register(self.sock, select.POLLIN)
        if not poller.poll(left * 1000):
            raise Timeout()
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            raise Closed()
        self.buf += data

    def read_until(self, terminator, timeout=None):
        """Bytes up to and including the first `terminator`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            i = self.buf.find(terminator)
            if i >= 0:
                out = bytes(self.buf[:i + len(terminator)])
                del self.buf[:i + len(terminator)]
                return out
            self._fill(deadline)

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_line(self, timeout=None):
        return self.read_until(b"\r\n", timeout)

    def wait_data(self, timeout=10.0):
        """Waits until something arrives, EOF or `timeout`; what arrived stays buffered."""
        if self.buf or self.closed:
            return
        try:
            self._fill(time.monotonic() + timeout)
        except (Timeout, Closed):
            pass

    def read_idle(self, idle=0.3, limit=5.0):
        """Everything that arrives until `idle` seconds pass quietly (or EOF, or `limit`)."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                self._fill(min(end, time.monotonic() + idle))
            except (Timeout, Closed):
                break
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def call(self, data, terminator=b"\r\n", timeout=None):
        """Sends `data`, returns the reply up to `terminator`."""
        self.send(data)
        return self.read_until(terminator, timeout)

    def get(self, key, timeout=None):
        """The value of `key` (bytes) or None; raises on a malformed reply."""
        self.send(b"get " + key + b"\r\n")
        line = self.read_line(timeout)
        if line == b"END\r\n":
            return None
        parts = line.split()
        if len(parts) < 4 or parts[0] != b"VALUE":
            raise ValueError("unexpected reply to get: %r" % line[:200])
        value = self.read_exact(int(parts[3]) + 2, timeout)[:-2]
        end = self.read_line(timeout)
        if end != b"END\r\n":
            raise ValueError("unexpected end of get: %r" % end[:200])
        return value

    def set(self, key, value, flags=0, exptime=0, timeout=None):
        """Returns the reply line without "\r\n" (b"STORED" on success)."""
        self.send(b"set %s %d %d %d\r\n%s\r\n" % (key, flags, exptime, len(value), value))
        return self.read_line(timeout)[:-2]

    def stats(self, arg=b"", timeout=None):
        """`stats [arg]` as a dict of strings."""
        self.send(b"stats %s\r\n" % arg if arg else b"stats\r\n")
        out = {}
        while True:
            line = self.read_line(timeout)
            if line == b"END\r\n":
                return out
            parts = line.decode("latin-1").split()
            if len(parts) >= 3 and parts[0] == "STAT":
                out[parts[1]] = parts[2]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class UnreadFlood:
    """A client that pipelines `request` over and over (up to `total` bytes) and never reads a
    reply, on a thread of its own, until the `with` block ends; its connection stays open, the
    replies unread, until then. .sent counts bytes sent, .stalls sends that timed out (the
    server stopped reading from it: backpressure)."""

    def __init__(self, server, request, total=20 * 1000 * 1000):
        self.server, self.chunk, self.total = server, request * 4096, total
        self.sent = self.stalls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flood, daemon=True)

    def _flood(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        s.settimeout(0.2)
        try:
            while self.sent < self.total and not self._stop.is_set():
                try:
                    self.sent += s.send(self.chunk)
                except socket.timeout:
                    self.stalls += 1
                except OSError:
                    break
        finally:
            self._stop.wait()
            s.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        return False


def round_trips(server, seconds, item, also=None, pause=0.02):
    """Another client's set-then-get round trips on `server` for `seconds`, while something
    else loads it. `item(i)` gives the i-th (key, value); `also(conn, i)`, if given, is one more
    check on the same connection. Returns (latencies in seconds, failures); stops at the first
    timeout or close."""
    latencies, failures = [], []
    end = time.monotonic() + seconds
    with server.conn(timeout=3) as other:
        i = 0
        while time.monotonic() < end:
            key, value = item(i)
            t0 = time.monotonic()
            try:
                ok = other.set(key, value) == b"STORED" and other.get(key) == value
                ok = ok and (also is None or also(other, i))
            except (Timeout, Closed) as e:
                failures.append("%s: %s" % (key.decode(), type(e).__name__))
                break
            latencies.append(time.monotonic() - t0)
            if not ok:
                failures.append("%s: wrong reply" % key.decode())
            i += 1
            time.sleep(pause)
    return latencies, failures


def wait_exit(proc, timeout):
    """proc.wait(timeout) that returns None instead of raising."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
