#!/usr/bin/env python3
"""memcached's command line, run as a service manager runs it (works against either server):

  * Debian's /etc/memcached.conf style: -d -P PIDFILE -u USER -m 64 -p PORT -l 127.0.0.1
    -c 1024 plus -o options: the command returns once the daemon is detached and listening
    (cinchd: at once; memcached returns before it listens, so it is polled), the pid file names
    it, it runs as USER in its own session in / with stdio on /dev/null, and SIGTERM stops it
    and removes the pid file. cinchd prints one warning line per -o key it ignores;
  * a daemon that cannot listen makes the command fail (cinchd only: memcached exits 0 first);
  * -s SOCKET -a 600: the socket has mode 0600 and belongs to USER, and no TCP port is bound
    (not the -p port, and no listening inet socket among the process's descriptors);
  * -c 4096 under a soft open-file limit of 1024: the limit is raised and 1,500 concurrent
    connections are all answered;
  * -c 4096 under a hard limit of 1024 that the server may not raise: it refuses to start with
    exit status 71 (EX_OSERR) and a message about open files; -c 1024 under that limit (which
    memcached accepts): cinchd starts with -c lowered to fit and says so;
  * started as root: without -u it refuses (exit 64), with an unknown user too (exit 67);
  * -l repeated, with an IPv6 address: both answer.

Run as root (CI), -u drops to `memcache` (Debian's memcached package creates it) or `nobody`.
"""

import ctypes
import os
import pwd
import resource
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import harness

START_WITHIN = 10.0  # a bound on waiting for an event, not a performance figure
CONNECTIONS = 1500
SOFT_LIMIT = 1024
CONN_LIMIT = 4096
EX_OSERR = 71
CAP_SETPCAP = 8
CAP_SYS_RESOURCE = 24
PR_CAPBSET_DROP = 24


def run_user():
    """The user -u names: when root, one that is not (memcache or nobody); else ourselves."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    for name in ("memcache", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    raise harness.ServerError("no unprivileged user (memcache, nobody) to run as")


def user_flags():
    return ["-u", run_user()]


def wait_until(predicate, timeout=START_WITHIN):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for our purpose; a daemon's parent is init, which reaps it.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def proc_stat(pid):
    """(ppid, session id) from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[3])


def proc_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[2])  # effective
    return None


def socket_inodes(pid):
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def listening_inet_sockets(pid):
    """Local addresses of the TCP sockets in LISTEN state (IPv4 and IPv6) that `pid` holds."""
    mine = socket_inodes(pid)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and int(cols[9]) in mine:  # 0A: TCP_LISTEN
                found.append("%s %s" % (table, cols[1]))
    return found


def ask(sock, request=b"version\r\n", until=b"\r\n"):
    sock.sendall(request)
    data = b""
    while not data.endswith(until):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def shared_tmpdir():
    """A directory the -u user may write its pid file and socket into."""
    d = tempfile.mkdtemp(prefix="cinch-cl-")
    os.chmod(d, 0o1777)
    return d


def kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


# ----------------------------------------------------------------------------- checks


def check_debian_conf(c, args):
    d = shared_tmpdir()
    pid_file = os.path.join(d, "memcached.pid")
    port = harness.free_port()
    argv = [args.server, "-d", "-P", pid_file] + user_flags() + [
        "-m", "64", "-p", str(port), "-l", "127.0.0.1", "-c", "1024", "-U", "0",
        "-o", "modern,hashpower=16,lru_crawler"]
    pid = None
    try:
        run = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=START_WITHIN)
        err = run.stderr.decode("utf-8", "replace")
        c.equal(run.returncode, 0, "-d: the command exits 0 (stderr %r)" % err[:300])
        if harness.is_memcached(args.server):
            wait_until(lambda: os.path.exists(pid_file) and harness.can_connect(port))
        else:
            c.check(harness.can_connect(port, timeout=2), "-d: listening when the command returns")
            ignored = [l for l in err.splitlines() if " ignored: " in l]
            c.equal(len(ignored), 3, "-o modern,hashpower,lru_crawler: one warning line each")
        if not c.check(os.path.exists(pid_file), "-P: pid file written"):
            return
        with open(pid_file) as f:
            pid = int(f.read().strip())
        c.check(pid_alive(pid), "-P: the pid file names a live process")
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            c.check(os.path.basename(f.read().split(b"\0")[0]) ==
                    os.path.basename(args.server).encode(), "-P: ... which is the server")
        ppid, sid = proc_stat(pid)
        c.equal(sid, pid, "-d: the daemon leads its own session")
        c.check(ppid != os.getpid(), "-d: not our child any more")
        c.equal(os.readlink("/proc/%d/cwd" % pid), "/", "-d: working directory /")
        for fd in (0, 1, 2):
            c.equal(os.readlink("/proc/%d/fd/%d" % (pid, fd)), "/dev/null",
                    "-d: fd %d on /dev/null" % fd)
        c.equal(proc_uid(pid), pwd.getpwnam(run_user()).pw_uid, "-u: runs as %s" % run_user())
        with harness.Conn(port) as conn:
            c.equal(conn.set(b"debian", b"conf"), b"STORED", "set on the daemon")
            c.equal(conn.get(b"debian"), b"conf", "get on the daemon")
            st = conn.stats(b"settings")
            c.equal(st.get("maxconns"), "1024", "stats settings maxconns")
            c.equal(st.get("maxbytes"), str(64 << 20), "stats settings maxbytes")
        os.kill(pid, signal.SIGTERM)
        c.check(wait_until(lambda: not pid_alive(pid)), "SIGTERM stops the daemon")
        c.check(wait_until(lambda: not os.path.exists(pid_file)),
                "-P: pid file removed on a clean exit")
    finally:
        if pid is not None and pid_alive(pid):
            kill_quietly(pid)
        shutil.rmtree(d, ignore_errors=True)


def check_daemon_failure(c, args):
    if harness.is_memcached(args.server):
        c.skip("-d with a taken port", "memcached detaches before it binds and exits 0")
        return
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        run = subprocess.run([args.server, "-d", "-p", str(port), "-l", "127.0.0.1"] +
                             user_flags(), stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=START_WITHIN)
    err = run.stderr.decode("utf-8", "replace")
    c.check(run.returncode not in (0, None), "-d on a taken port: the command fails",
            "exit %r, stderr %r" % (run.returncode, err[:300]))
    c.check("listen" in err or "bind" in err, "-d on a taken port: says why", repr(err[:300]))


def check_unix_socket(c, args):
    d = shared_tmpdir()
    path = os.path.join(d, "cinch.sock")
    port = harness.free_port()
    argv = [args.server, "-s", path, "-a", "600", "-p", str(port), "-l", "127.0.0.1",
            "-U", "0"] + user_flags()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, preexec_fn=harness._die_with_parent)

    def answers():
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(path)
                return ask(s).startswith(b"VERSION ")
        except OSError:
            return False

    try:
        c.check(wait_until(lambda: proc.poll() is not None or answers()) and proc.poll() is None,
                "-s: answers on the unix socket")
        st = os.stat(path)
        c.check(stat.S_ISSOCK(st.st_mode), "-s: a socket file")
        c.equal(oct(st.st_mode & 0o777), oct(0o600), "-a 600: socket mode")
        c.equal(st.st_uid, pwd.getpwnam(run_user()).pw_uid, "-s: socket owned by the -u user")
        c.check(not harness.can_connect(port), "-s: the -p port is not bound")
        c.equal(listening_inet_sockets(proc.pid), [], "-s: no listening TCP socket at all")
    finally:
        proc.terminate()
        harness.wait_exit(proc, 5) if proc.poll() is None else None
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def limit_files(soft, hard, drop_sys_resource):
    def preexec():
        harness._die_with_parent()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        if drop_sys_resource:  # root without CAP_SYS_RESOURCE cannot raise the hard limit
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
    return preexec


def check_conn_limit_beyond_ulimit(c, args):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < CONN_LIMIT + 256:
        c.skip("-c beyond ulimit -n", "hard open-file limit %d too low to test" % hard)
        return
    # This test holds CONNECTIONS sockets itself.
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = harness.free_port()
    # -b: the connections come in a burst; with memcached's default backlog (1024) a server
    # slowed down (a sanitizer, a loaded CI machine) overflows the accept queue and the kernel
    # leaves clients waiting for a SYN-ACK retransmission (seen: 1448 of 1500 under ASan).
    argv = [args.server, "-p", str(port), "-l", "127.0.0.1", "-U", "0", "-c", str(CONN_LIMIT),
            "-t", "2", "-b", "4096"] + (["-u", "root"] if os.geteuid() == 0 else [])
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            preexec_fn=limit_files(SOFT_LIMIT, hard, False))
    socks = []
    try:
        c.check(wait_until(lambda: proc.poll() is not None or harness.can_connect(port)) and
                proc.poll() is None, "-c %d under ulimit -n %d: starts" % (CONN_LIMIT, SOFT_LIMIT))
        with open("/proc/%d/limits" % proc.pid) as f:
            row = [l for l in f if l.startswith("Max open files")][0].split()
        c.check(int(row[3]) >= CONN_LIMIT, "-c %d: soft open-file limit raised" % CONN_LIMIT,
                "limits row %r" % row)
        # Each connection asks at once; a server that stopped accepting leaves the connection
        # in the kernel's backlog unanswered, and this stops at the first silent one.
        answered = 0
        for _ in range(CONNECTIONS):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=START_WITHIN)
                socks.append(s)
                s.sendall(b"version\r\n")
            except OSError:
                break
        for s in socks:
            try:
                if not ask(s, b"").startswith(b"VERSION "):
                    break
            except OSError:
                break
            answered += 1
        c.equal(answered, CONNECTIONS, "%d concurrent connections all answered" % CONNECTIONS)
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        if harness.wait_exit(proc, 5) is None:
            proc.kill()
            proc.wait()


def effective_caps():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def check_hard_limit_too_low(c, args):
    root = os.geteuid() == 0
    caps = effective_caps()
    if root and caps & (1 << CAP_SYS_RESOURCE) and not caps & (1 << CAP_SETPCAP):
        c.skip("hard limit too low", "root here may raise it and cannot give that up")
        return
    port = harness.free_port()
    argv = [args.server, "-p", str(port), "-l", "127.0.0.1", "-U", "0", "-c",
            str(CONN_LIMIT)] + (["-u", "root"] if os.geteuid() == 0 else [])
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            preexec_fn=limit_files(SOFT_LIMIT, SOFT_LIMIT,
                                                  root and caps & (1 << CAP_SYS_RESOURCE)))
    try:
        out, err = proc.communicate(timeout=START_WITHIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    text = (out + err).decode("utf-8", "replace")
    c.equal(proc.returncode, EX_OSERR, "-c %d, hard limit %d: refuses to start (EX_OSERR)" %
            (CONN_LIMIT, SOFT_LIMIT))
    c.check("open files" in text, "... saying the open-file limit is too low", repr(text[:300]))
    c.check(not harness.can_connect(port), "... and listens nowhere")


def check_root_needs_user(c, args):
    if os.geteuid() != 0:
        c.skip("root without -u", "not running as root")
        return
    for flags, code, says in (([], 64, "can't run as root without the -u switch"),
                              (["-u", "no-such-user-cinch"], 67, "can't find the user")):
        port = harness.free_port()
        run = subprocess.run([args.server, "-p", str(port), "-l", "127.0.0.1", "-U", "0"] + flags,
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=START_WITHIN)
        err = run.stderr.decode("utf-8", "replace")
        what = "as root with %s" % (" ".join(flags) or "no -u")
        c.equal(run.returncode, code, "%s: exit status" % what)
        c.check(says in err, "%s: says %r" % (what, says), repr(err[:300]))
        c.check(not harness.can_connect(port), "%s: listens nowhere" % what)


def check_conn_limit_at_hard_limit(c, args):
    """-c 1024 (memcached's default) under a hard limit of 1024: memcached starts (it needs the
    hard limit to admit -c only), so cinchd must too, fitting -c to the descriptors it has."""
    root = os.geteuid() == 0
    caps = effective_caps()
    if root and caps & (1 << CAP_SYS_RESOURCE) and not caps & (1 << CAP_SETPCAP):
        c.skip("-c at the hard limit", "root here may raise it and cannot give that up")
        return
    port = harness.free_port()
    argv = [args.server, "-p", str(port), "-l", "127.0.0.1", "-U", "0", "-c",
            str(SOFT_LIMIT)] + (["-u", "root"] if root else [])
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=limit_files(SOFT_LIMIT, SOFT_LIMIT,
                                                   root and caps & (1 << CAP_SYS_RESOURCE)))
    try:
        started = wait_until(lambda: proc.poll() is not None or harness.can_connect(port))
        c.check(started and proc.poll() is None,
                "-c %d, hard limit %d: starts" % (SOFT_LIMIT, SOFT_LIMIT))
        if proc.poll() is not None:
            return
        with harness.Conn(port) as conn:
            maxconns = int(conn.stats(b"settings").get("maxconns", "0"))
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
        if harness.is_memcached(args.server):
            c.equal(maxconns, SOFT_LIMIT, "memcached keeps -c")
        else:
            c.check(0 < maxconns < SOFT_LIMIT, "-c fitted below the hard limit",
                    "maxconns %d" % maxconns)
            c.check("-c %d lowered to %d" % (SOFT_LIMIT, maxconns) in text,
                    "... saying so on stderr", repr(text[:300]))
    finally:
        proc.terminate()
        if harness.wait_exit(proc, 5) is None:
            proc.kill()
            proc.wait()
        log.close()


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def check_listen_ipv6(c, args):
    if not has_ipv6_loopback():
        c.skip("-l [::1]:port", "no IPv6 loopback here")
        return
    port6 = harness.free_port()
    with harness.Server(args.server, ["-l", "[::1]:%d" % port6]) as server:
        with harness.Conn(server.port) as conn:  # -l 127.0.0.1 from the harness, at -p
            c.check(conn.call(b"version\r\n").startswith(b"VERSION "), "-l 127.0.0.1 answers")
        with socket.create_connection(("::1", port6), timeout=START_WITHIN) as s:
            c.check(ask(s).startswith(b"VERSION "), "-l [::1]:port answers too")


def main(args):
    c = harness.Checker(args.verbose)
    check_debian_conf(c, args)
    check_daemon_failure(c, args)
    check_unix_socket(c, args)
    check_conn_limit_beyond_ulimit(c, args)
    check_hard_limit_too_low(c, args)
    check_conn_limit_at_hard_limit(c, args)
    check_root_needs_user(c, args)
    check_listen_ipv6(c, args)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__))
