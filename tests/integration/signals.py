#!/usr/bin/env python3
"""Process behaviour: SIGTERM and SIGINT with clients connected exit 0 within 5 s; an invalid
flag exits non-zero with a message on stderr; -h exits 0; -V prints a version."""

import os
import re
import signal
import subprocess
import time

import harness

SERVER_ARGS = ["-m", "64", "-t", "2"]
EXIT_WITHIN = 5.0


def busy_clients(server):
    """Connections in assorted states: idle, mid-command, mid-value, with unread replies."""
    conns = [server.conn() for _ in range(8)]
    conns[0].send(b"set sig:a 0 0 5\r\nhello\r\n")
    conns[0].read_line()
    conns[1].send(b"get sig:")                      # a command line without its newline
    conns[2].send(b"set sig:b 0 0 100\r\nabc")      # a value with bytes still to come
    conns[3].send(b"get sig:a\r\n" * 2000)          # replies left unread
    conns[4].send(b"mg sig:a v q\r\n")
    return conns


def check_signal(c, args, sig):
    name = signal.Signals(sig).name
    with harness.Server(args.server, SERVER_ARGS) as server:
        conns = busy_clients(server)
        time.sleep(0.1)
        start = time.monotonic()
        server.proc.send_signal(sig)
        code = harness.wait_exit(server.proc, EXIT_WITHIN)
        took = time.monotonic() - start
        c.check(code is not None, "%s: exits within %.0f s" % (name, EXIT_WITHIN),
                "still running; log:\n" + server.log()[-2000:])
        if code is not None:
            c.equal(code, 0, "%s: exit status (took %.2f s)" % (name, took))
        for conn in conns:
            conn.close()


def check_idle_sigterm(c, args):
    with harness.Server(args.server, SERVER_ARGS) as server:
        server.proc.send_signal(signal.SIGTERM)
        code = harness.wait_exit(server.proc, EXIT_WITHIN)
        c.equal(code, 0, "SIGTERM with no clients: exit status")


def run_flagged(args, flags):
    """Runs the server with `flags` on a free port; returns (exit code or None, out, err)."""
    argv = [args.server, "-l", "127.0.0.1", "-p", str(harness.free_port()), "-U", "0"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # both refuse to run as root without -u
    proc = subprocess.Popen(argv + flags, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=EXIT_WITHIN)
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def check_flags(c, args):
    for bad in (["-Z"], ["--no-such-option"]):
        code, out, err = run_flagged(args, bad)
        c.check(code not in (None, 0), "invalid flag %s: non-zero exit" % bad[0],
                "exit %r; stderr %r" % (code, err[:300]))
        c.check(err.strip() != "", "invalid flag %s: message on stderr" % bad[0],
                "stdout %r" % out[:300])
    code, out, err = run_flagged(args, ["-h"])
    c.equal(code, 0, "-h: exit status")
    c.check("-p" in out + err, "-h: prints usage mentioning -p", (out + err)[:300])
    code, out, err = run_flagged(args, ["-V"])
    c.equal(code, 0, "-V: exit status")
    c.check(re.search(r"\d+\.\d+", out + err) is not None, "-V: prints a version",
            repr((out + err)[:300]))
    c.note("-V said: %r" % (out + err).strip()[:100])


def main(args):
    c = harness.Checker(args.verbose)
    check_signal(c, args, signal.SIGTERM)
    check_signal(c, args, signal.SIGINT)
    check_idle_sigterm(c, args)
    check_flags(c, args)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__))
