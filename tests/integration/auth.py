#!/usr/bin/env python3
"""Authentication (-Y FILE): memcached's text authentication, tenants' keyspaces, SIGHUP.

  * text exchange: the same requests to cinchd -Y and to memcached 1.6.18 -Y with the same file
    get the same replies, byte for byte (one request at a time and wait for its reply: memcached
    1.6.18 sends only the last reply of requests that arrive together before authentication,
    docs/auth.md), and both close a connection that sends 2 KiB without a newline;
  * an unauthenticated client gets nothing: no value, no stats, no version;
  * pymemcache authenticates the memcached way (a set of "<user> <password>") and then works;
  * users with a quota get keyspaces of their own (the same key in two tenants is two items),
    users without one share the default keyspace;
  * with -e, each tenant gets its own items back after a restart (<file>.tenants keeps the
    tenants' keyspace ids), a removed tenant's items are dropped;
  * SIGHUP reloads the file: an added user may log in, a removed user's idle connection is
    closed (and so is that of a user whose password changed), the others' connections stay
    and keep working; a bad file changes nothing.
Against memcached only the differential part runs (memcached has no tenants and does not close
connections on reload).
"""

import os
import signal
import tempfile
import time

import harness

SERVER_ARGS = ["-m", "64", "-t", "2"]
EVENT_TIMEOUT = 10.0

# Valid for memcached too (it would read "pw:16" as a password: no quotas in this one).
PLAIN_USERS = b"alice:secret\nbob:pw\ncarol:b:c\n"
TENANT_USERS = b"alice:secret\nbob:pw\nten1:t1:16\nten2:t2:16m\n"

# (what, [chunks]): each chunk is sent and its reply read before the next.
EXCHANGES = [
    ("get first", [b"get foo\r\n", b"get foo\r\n"]),
    ("version first", [b"version\r\n"]),
    ("stats first", [b"stats\r\n"]),
    ("quit first", [b"quit\r\n", b"get foo\r\n"]),
    ("meta first", [b"mg foo v\r\n", b"mn\r\n", b"ms foo 1\r\n"]),
    ("empty line", [b"\r\n"]),
    ("bad command", [b"bogus\r\n"]),
    ("good login", [b"set x 0 0 12\r\nalice secret\r\n", b"get x\r\n", b"set x 0 0 1\r\na\r\n",
                    b"get x\r\n", b"delete x\r\n"]),
    ("login then an ordinary set", [b"set x 0 0 12\r\nalice secret\r\n",
                                    b"set x 0 0 11\r\nalice wrong\r\n", b"get x\r\n",
                                    b"delete x\r\n"]),
    ("wrong password", [b"set x 0 0 11\r\nalice wrong\r\n", b"get foo\r\n"]),
    ("unknown user", [b"set x 0 0 11\r\nmallory pwd\r\n"]),
    ("password with a colon", [b"set x 0 0 9\r\ncarol b:c\r\n", b"get foo\r\n"]),
    ("password cut at the colon", [b"set x 0 0 7\r\ncarol b\r\n"]),
    ("add is not a login", [b"add x 0 0 12\r\n"]),
    ("cas is not a login", [b"cas x 0 0 12 1\r\n"]),
    ("noreply still answers", [b"set x 0 0 12 noreply\r\nalice secret\r\n", b"get foo\r\n"]),
    ("flags and exptime ignored", [b"set k a b 12\r\nalice secret\r\n", b"get k\r\n"]),
    ("no password", [b"set x 0 0 5\r\nalice\r\n"]),
    ("tab is no separator", [b"set x 0 0 12\r\nalice\tsecret\r\n"]),
    ("two spaces", [b"set x 0 0 13\r\nalice  secret\r\n", b"get foo\r\n"]),
    ("extra words", [b"set x 0 0 14\r\nalice secret x\r\n", b"get foo\r\n"]),
    ("bad termination", [b"set x 0 0 12\r\nalice secret\n\n"]),
    ("negative length", [b"set x 0 0 -1\r\n"]),
    ("missing length", [b"set x 0 0\r\n"]),
    ("junk length", [b"set x 0 0 12junk\r\n"]),
    ("upper case", [b"SET x 0 0 12\r\n"]),
    ("LF only", [b"set x 0 0 12\nalice secret\r\n", b"get foo\r\n"]),
    ("value split", [b"set x 0 0 12\r\nalice sec", b"ret\r\nget foo\r\n"]),
    ("line split", [b"get fo", b"o\r\n"]),
    ("no newline in 2 KiB", [b"x" * 3000]),
]


# Requests that arrive together before authentication: memcached 1.6.18 answers each but sends
# only the last reply (they share one response object); cinchd sends every reply, in order.
PIPELINED = [
    ([b"set x 0 0 4\r\nalice secret\r\n"],
     b"CLIENT_ERROR bad command line termination\r\nCLIENT_ERROR unauthenticated\r\n"),
    ([b"get a\r\nget b\r\nset x 0 0 12\r\nalice secret\r\n"],
     b"CLIENT_ERROR unauthenticated\r\n" * 2 + b"STORED\r\n"),
]


def write(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)


def exchange(port, chunks):
    """The replies to each chunk in turn; <closed> at EOF. A chunk that ends a line, or is a
    line longer than both servers take (2048 bytes), is answered (or the connection closed)
    by both servers: its first bytes are waited for as long as a loaded machine needs, then
    what follows until 0.3 s of quiet. Other chunks (a partial request) get what arrives
    until 0.3 s of quiet: nothing."""
    out = []
    with harness.Conn(port) as conn:
        for chunk in chunks:
            try:
                conn.send(chunk)
            except OSError:
                out.append(b"<closed>")
                break
            if chunk.endswith(b"\n") or len(chunk) > 2048:
                conn.wait_data(timeout=10.0)
            reply = conn.read_idle(idle=0.3, limit=3.0)
            if conn.closed:
                out.append(reply + b"<closed>")
                break
            out.append(reply)
    return out


def check_differential(c, args, auth_file):
    write(auth_file, PLAIN_USERS)
    with harness.Server(args.server, SERVER_ARGS + ["-Y", auth_file]) as ours, \
            harness.Server(harness.MEMCACHED, SERVER_ARGS + ["-Y", auth_file]) as ref:
        for what, chunks in EXCHANGES:
            c.equal(exchange(ours.port, chunks), exchange(ref.port, chunks),
                    "text auth vs memcached -Y: " + what)
        for chunks, every_reply in PIPELINED:
            last = every_reply[every_reply.rstrip(b"\r\n").rfind(b"\r\n") + 2:]
            want = every_reply if ours.path == args.server and \
                not harness.is_memcached(args.server) else last
            c.equal(exchange(ours.port, chunks), [want], "pipelined before auth: %r" % chunks)
            c.equal(exchange(ref.port, chunks), [last], "memcached: only the last reply")


def login(conn, user, password):
    data = user + b" " + password
    return conn.call(b"set auth 0 0 %d\r\n%s\r\n" % (len(data), data))


def wait_closed(conn, timeout=EVENT_TIMEOUT):
    """True once the server closed `conn` (anything it sent before is dropped)."""
    try:
        while True:
            conn.read_until(b"\0\0never\0\0", timeout=timeout)
    except harness.Closed:
        return True
    except harness.Timeout:
        return False


def wait_log(server, text, timeout=EVENT_TIMEOUT):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in server.log():
            return True
        time.sleep(0.05)
    return False


def check_unauthenticated(c, server):
    with server.conn() as owner:
        c.equal(login(owner, b"alice", b"secret"), b"STORED\r\n", "alice logs in")
        c.equal(owner.set(b"secret-key", b"the value"), b"STORED", "alice stores a key")
    with server.conn() as stranger:
        stranger.send(b"get secret-key\r\ngets secret-key\r\nmg secret-key v\r\nstats\r\n"
                      b"version\r\nstats settings\r\n")
        got = b"".join(stranger.read_line() for _ in range(6))
        c.equal(got, b"CLIENT_ERROR unauthenticated\r\n" * 6, "a stranger gets nothing")
        c.equal(login(stranger, b"alice", b"guess"), b"CLIENT_ERROR authentication failure\r\n",
                "a wrong password is refused")
        c.equal(stranger.call(b"get secret-key\r\n"), b"CLIENT_ERROR unauthenticated\r\n",
                "still nothing after a failed login")
    with server.conn() as conn:
        login(conn, b"bob", b"pw")
        st = conn.stats()
        c.equal((st.get("auth_cmds"), st.get("auth_errors")), ("3", "1"), "auth_cmds, auth_errors")
        st = conn.stats(b"settings")
        c.equal(st.get("auth_enabled_ascii"), server.auth_file, "stats settings: auth file")


def check_pymemcache_and_tenants(c, server):
    from pymemcache.client.base import Client

    def client(user, password):
        cl = Client(("127.0.0.1", server.port), timeout=5, connect_timeout=5)
        # memcached's text authentication: a set of "<user> <password>" under any key.
        c.check(cl.set(user, "%s %s" % (user, password), noreply=False) is True,
                "pymemcache logs in as " + user)
        return cl

    alice, bob = client("alice", "secret"), client("bob", "pw")
    ten1, ten2 = client("ten1", "t1"), client("ten2", "t2")
    for cl, value in ((ten1, b"one"), (ten2, b"two"), (alice, b"shared")):
        c.check(cl.set("k", value, noreply=False), "set k")
    c.equal(ten1.get("k"), b"one", "tenant 1 reads its own k")
    c.equal(ten2.get("k"), b"two", "tenant 2 reads its own k")
    c.equal(bob.get("k"), b"shared", "bob (no quota) shares alice's keyspace")
    c.equal(ten1.get("alice-only"), None, "a tenant does not see the default keyspace")
    alice.set("alice-only", b"x", noreply=False)
    c.equal(ten2.get("alice-only"), None, "nor after alice wrote it")
    ten2.delete("k", noreply=False)
    c.equal(ten1.get("k"), b"one", "a tenant's delete leaves the other's item")
    c.equal(alice.get("k"), b"shared", "and the default keyspace's")
    for cl in (alice, bob, ten1, ten2):
        cl.close()


def check_reload(c, server):
    path = server.auth_file
    alice, bob, ten1, carol = (server.conn() for _ in range(4))
    write(path, TENANT_USERS + b"carol:old\n")
    server.proc.send_signal(signal.SIGHUP)
    c.check(wait_log(server, "SIGHUP: reloaded"), "SIGHUP reloads the file")
    for conn, user, pw in ((alice, b"alice", b"secret"), (bob, b"bob", b"pw"),
                           (ten1, b"ten1", b"t1"), (carol, b"carol", b"old")):
        c.equal(login(conn, user, pw), b"STORED\r\n", "%s logs in" % user.decode())
    c.equal(ten1.set(b"kept", b"1"), b"STORED", "ten1 stores")
    revoked = int(alice.stats()["revoked_connections"])
    # bob removed, carol's password changed, dave added; alice and ten1 unchanged.
    write(path, b"alice:secret\nten1:t1:32\ncarol:new\ndave:pw:8\n")
    server.proc.send_signal(signal.SIGHUP)
    c.check(wait_closed(bob), "a removed user's idle connection is closed")
    c.check(wait_closed(carol), "a user whose password changed is disconnected")
    c.equal(int(alice.stats()["revoked_connections"]) - revoked, 2,
            "stats counts the two connections the reload closed")
    c.equal(alice.get(b"k"), b"shared", "alice's connection stays and works")
    c.equal(ten1.get(b"kept"), b"1", "ten1's connection stays (only its quota changed)")
    with server.conn() as conn:
        c.equal(login(conn, b"bob", b"pw"), b"CLIENT_ERROR authentication failure\r\n",
                "bob can no longer log in")
    with server.conn() as conn:
        c.equal(login(conn, b"dave", b"pw"), b"STORED\r\n", "dave, added, logs in")
        c.equal(conn.get(b"k"), None, "dave is a tenant: his own keyspace")
    with server.conn() as conn:
        c.equal(login(conn, b"carol", b"new"), b"STORED\r\n", "carol logs in with her new password")
    # A bad file: logged, and the users stay as they were.
    write(path, b"alice:secret\n\nbob:pw\n")
    server.proc.send_signal(signal.SIGHUP)
    c.check(wait_log(server, "the users loaded before stay"), "a bad file is logged")
    with server.conn() as conn:
        c.equal(login(conn, b"dave", b"pw"), b"STORED\r\n", "after a bad file, dave still logs in")
    with server.conn() as conn:
        c.equal(login(conn, b"bob", b"pw"), b"CLIENT_ERROR authentication failure\r\n",
                "and bob still not")
    c.equal(alice.get(b"k"), b"shared", "alice's connection survived both reloads")
    for conn in (alice, ten1):
        conn.close()
    c.check(server.alive(), "the server still runs")


def check_restart(c, args, tmp):
    """-e with tenants: after a restart each tenant gets its own items back, whatever the order
    of the file's lines now; a tenant removed while the server was down leaves nothing a new
    tenant could read; without the saved ids no tenant item is trusted."""
    auth_file, memory = os.path.join(tmp, "restart-users"), os.path.join(tmp, "memory")
    write(auth_file, b"ten1:t1:16\nten2:t2:16\nalice:secret\n")
    server = harness.Server(args.server, SERVER_ARGS + ["-Y", auth_file, "-e", memory])

    def restart_with(users, what):
        c.equal(server.stop(), 0, "cinchd saves and exits 0 (%s)" % what)
        write(auth_file, users)
        server.start()

    def get_as(user, password, key):
        with server.conn() as conn:
            c.equal(login(conn, user, password), b"STORED\r\n", "%s logs in" % user.decode())
            return conn.get(key)

    try:
        server.start()
        for user, password, value in ((b"ten1", b"t1", b"one"), (b"ten2", b"t2", b"two"),
                                      (b"alice", b"secret", b"shared")):
            with server.conn() as conn:
                login(conn, user, password)
                c.equal(conn.set(b"k", value), b"STORED", "%s stores k" % user.decode())
        restart_with(b"alice:secret\nten2:t2:16\nten1:t1:16\n", "lines swapped")
        c.equal(get_as(b"ten1", b"t1", b"k"), b"one", "ten1 gets its own k back")
        c.equal(get_as(b"ten2", b"t2", b"k"), b"two", "ten2 gets its own k back")
        c.equal(get_as(b"alice", b"secret", b"k"), b"shared", "alice gets the default k back")
        restart_with(b"ten3:t3:16\nten1:t1:16\nten4:t4:16\n", "ten2 removed, two added")
        c.equal(get_as(b"ten1", b"t1", b"k"), b"one", "ten1's k survives a second restart")
        c.equal(get_as(b"ten3", b"t3", b"k"), None, "a new tenant reads nothing of ten2's")
        c.equal(get_as(b"ten4", b"t4", b"k"), None, "nor does another")
        c.check("tenant keyspaces" in server.log(), "the dropped keyspace is logged",
                server.log()[-400:])
        c.equal(server.stop(), 0, "cinchd saves and exits 0")
        os.unlink(memory + ".tenants")
        write(auth_file, b"ten4:t4:16\nten3:t3:16\nten1:t1:16\n")
        server.start()
        for user, password in ((b"ten1", b"t1"), (b"ten3", b"t3"), (b"ten4", b"t4")):
            c.equal(get_as(user, password, b"k"), None,
                    "without the saved ids %s reads no tenant item" % user.decode())
    finally:
        server.stop()


def check_start(c, args, tmp):
    """A missing or malformed file, or -S without -Y, stops the start with a message."""
    bad = os.path.join(tmp, "bad")
    write(bad, b"alice:secret\nno colon here\n")
    for flags, what in ((["-Y", bad], "line 2"), (["-Y", os.path.join(tmp, "none")], "none"),
                        (["-S"], "-Y")):
        code, _, err = run_flagged(args, flags)
        c.check(code not in (None, 0) and what in err, "refuses to start: %s" % " ".join(flags),
                "exit %r, stderr %r" % (code, err[-300:]))


def run_flagged(args, flags):
    import subprocess
    argv = [args.server, "-l", "127.0.0.1", "-p", str(harness.free_port()), "-U", "0"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    proc = subprocess.Popen(argv + flags, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, out.decode(), err.decode()
    return proc.returncode, out.decode(), err.decode()


def main(args):
    c = harness.Checker(args.verbose)
    with tempfile.TemporaryDirectory(prefix="cinch-auth-") as tmp:
        auth_file = os.path.join(tmp, "users")
        check_differential(c, args, auth_file)
        if harness.is_memcached(args.server):
            return c.finish()
        check_start(c, args, tmp)
        check_restart(c, args, tmp)
        write(auth_file, TENANT_USERS)
        with harness.Server(args.server, SERVER_ARGS + ["-Y", auth_file]) as server:
            server.auth_file = auth_file
            check_unauthenticated(c, server)
            check_pymemcache_and_tenants(c, server)
            check_reload(c, server)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=120)
