#!/usr/bin/env python3
"""Bazel's HTTP remote cache (cinchd --http-port, docs/http-cache.md) against a real cinchd.

curl (a subprocess) and Python's http.client check every status code the protocol has: PUT
200, GET/HEAD 200 and 404, 400 for a malformed digest and for a CAS body whose sha256 is not
its digest (never stored, never served), 404 for other paths, 405, 411, 413 (the body is
drained, the connection and the server go on serving), 100-continue, Connection: close. Then
keep-alive and pipelined requests on one socket, chunked uploads, 1,000 blobs uploaded from
8 threads at once and read back, a 64 MiB blob up and down byte for byte, and the cache's
keys staying apart from memcached's (a memcached get of the hex digest finds nothing).
"""

import hashlib
import http.client
import os
import random
import subprocess
import tempfile
import threading

import harness

MIB = 1 << 20
ITEM_MAX = 80 * MIB  # -I: a 64 MiB blob fits
SERVER_ARGS = ["-m", "512", "-I", "80m", "-t", "2", "-c", "256"]
THREADS = 8
BLOBS = 1000
BIG = 64 * MIB


def sha(data):
    return hashlib.sha256(data).hexdigest()


class HttpServer(harness.FrontEndServer):
    """A cinchd with --http-port on a free port, ready once it logs that port."""

    front_ends = ("http",)

    @property
    def http_port(self):
        return self.ports.get("http")

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def client(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)


# ----------------------------------------------------------------------------- curl


def curl(server, method, path, data=None, headers=(), chunked=False):
    """(status, body) of one curl request; body bytes of a file upload come from `data`."""
    argv = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method]
    if method == "HEAD":
        argv = ["curl", "-sS", "-I", "-o", "-", "-w", "\n%{http_code}"]
    for h in headers:
        argv += ["-H", h]
    tmp = None
    if data is not None:
        tmp = tempfile.NamedTemporaryFile(prefix="cinch-http-")
        tmp.write(data)
        tmp.flush()
        argv += ["--data-binary", "@" + tmp.name]
        if chunked:
            argv += ["-H", "Transfer-Encoding: chunked"]
    argv.append(server.url(path))
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    finally:
        if tmp:
            tmp.close()
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code or b"0"), body


def check_curl(c, server):
    blob = b"hello, build cache\n"
    h = sha(blob)
    c.equal(curl(server, "GET", "/cas/" + h)[0], 404, "curl GET absent blob: 404")
    c.equal(curl(server, "HEAD", "/cas/" + h)[0], 404, "curl HEAD absent blob: 404")
    c.equal(curl(server, "PUT", "/cas/" + h, blob)[0], 200, "curl PUT blob: 200")
    c.equal(curl(server, "GET", "/cas/" + h), (200, blob), "curl GET blob: 200, the bytes")
    code, head = curl(server, "HEAD", "/cas/" + h)
    c.equal(code, 200, "curl HEAD blob: 200")
    c.check(b"content-length: %d" % len(blob) in head.lower(), "HEAD has the blob's length",
            repr(head))
    c.equal(curl(server, "PUT", "/cas/" + h, blob)[0], 200, "curl PUT again (present): 200")
    c.equal(curl(server, "GET", "/main/instance/cas/" + h), (200, blob),
            "instance prefix: the same cache")
    # AC: stored as sent.
    action = sha(b"some action")
    c.equal(curl(server, "PUT", "/ac/" + action, b"an action result")[0], 200, "curl PUT ac")
    c.equal(curl(server, "GET", "/ac/" + action), (200, b"an action result"), "curl GET ac")
    c.equal(curl(server, "GET", "/ac/" + h)[0], 404, "a CAS digest is not an AC entry")
    # Wrong digest: 400 and never stored.
    other = b"not the blob"
    c.equal(curl(server, "PUT", "/cas/" + sha(b"expected"), other)[0], 400,
            "curl PUT with a wrong digest: 400")
    c.equal(curl(server, "GET", "/cas/" + sha(b"expected"))[0], 404, "wrong-digest PUT not stored")
    c.equal(curl(server, "GET", "/cas/" + sha(other))[0], 404, "nor under its real digest")
    # Malformed digests, other paths, methods.
    for path in ["/cas/1234", "/ac/" + "g" * 64, "/cas/" + h + "0"]:
        c.equal(curl(server, "GET", path)[0], 400, "GET %s: 400" % path[:20])
        c.equal(curl(server, "PUT", path, b"x")[0], 400, "PUT %s: 400" % path[:20])
    for path in ["/", "/status", "/cas", "/blobs/" + h, "/CAS/" + h]:
        c.equal(curl(server, "GET", path)[0], 404, "GET %s: 404" % path[:20])
    c.equal(curl(server, "DELETE", "/cas/" + h)[0], 405, "DELETE: 405")
    c.equal(curl(server, "POST", "/cas/" + h, blob)[0], 405, "POST: 405")
    c.equal(curl(server, "GET", "/cas/" + h), (200, blob), "still there after DELETE")
    # Chunked transfer encoding.
    chunked = os.urandom(300000)
    c.equal(curl(server, "PUT", "/cas/" + sha(chunked), chunked, chunked=True)[0], 200,
            "curl chunked PUT: 200")
    c.equal(curl(server, "GET", "/cas/" + sha(chunked)), (200, chunked), "chunked blob served")
    # Over -I: 413 (curl sends Expect: 100-continue for a large body: the final status, then
    # close; without Expect the body is read and dropped).
    big = b"\x01" * (ITEM_MAX + 1)
    c.equal(curl(server, "PUT", "/cas/" + sha(big), big)[0], 413, "curl PUT over -I: 413")
    c.equal(curl(server, "PUT", "/cas/" + sha(big), big, headers=["Expect:"])[0], 413,
            "curl PUT over -I without Expect: 413")
    c.equal(curl(server, "PUT", "/cas/" + sha(big), big, chunked=True)[0], 413,
            "curl chunked PUT over -I: 413")
    c.equal(curl(server, "GET", "/cas/" + h), (200, blob), "serving after 413s")


# ----------------------------------------------------------------------------- raw sockets


def read_response(conn, method="GET"):
    """(status, headers dict, body) of one response read from a harness.Conn."""
    head = conn.read_until(b"\r\n\r\n", timeout=30).decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if status == 100:
        return status, headers, b""
    n = int(headers.get("content-length", "0"))
    body = b"" if method == "HEAD" else conn.read_exact(n, timeout=60)
    return status, headers, body


def put_request(path, body, extra=b""):
    return (b"PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n" %
            (path.encode(), len(body), extra)) + body


def get_request(path, method="GET", extra=b""):
    return b"%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (method.encode(), path.encode(), extra)


def check_raw(c, server):
    a, b = b"pipelined a", os.urandom(70000)
    conn = harness.Conn(server.http_port, timeout=30)
    conn.send(put_request("/cas/" + sha(a), a) + put_request("/cas/" + sha(b), b) +
              get_request("/cas/" + sha(a)) + get_request("/cas/" + sha(b), "HEAD") +
              get_request("/cas/" + sha(b)) + get_request("/nothing") +
              get_request("/cas/" + sha(b"absent")))
    got = [read_response(conn, m)[::2] for m in ["PUT", "PUT", "GET", "HEAD", "GET", "GET", "GET"]]
    c.equal(got, [(200, b""), (200, b""), (200, a), (200, b""), (200, b),
                  (404, b"not found\n"), (404, b"not found\n")],
            "7 pipelined requests answered in order on one socket")
    # 411: a PUT with neither Content-Length nor chunked.
    conn.send(b"PUT /cas/%s HTTP/1.1\r\nHost: t\r\n\r\n" % sha(b"").encode())
    c.equal(read_response(conn)[0], 411, "PUT without a length: 411")
    # 413 with the body sent: drained, and the same connection answers the next request.
    big = b"\x02" * (ITEM_MAX + 4096)
    conn.send(put_request("/cas/" + sha(big), big) + get_request("/cas/" + sha(a)))
    c.equal(read_response(conn)[0], 413, "PUT over -I on a keep-alive socket: 413")
    c.equal(read_response(conn)[::2], (200, a), "the same socket serves after the 413")
    # Expect: 100-continue.
    body = b"expected body"
    conn.send(put_request("/cas/" + sha(body), b"", b"Expect: 100-continue\r\n")
              .replace(b"Content-Length: 0", b"Content-Length: %d" % len(body)))
    c.equal(read_response(conn)[0], 100, "Expect: 100-continue answered 100")
    conn.send(body)
    c.equal(read_response(conn)[0], 200, "then the body is stored: 200")
    conn.send(get_request("/cas/" + sha(body)))
    c.equal(read_response(conn)[::2], (200, body), "and served")
    # Malformed request: 400 and the connection closes; a new one is served.
    conn.send(b"NOT HTTP AT ALL\r\n\r\n")
    c.equal(read_response(conn)[0], 400, "malformed request: 400")
    c.check(conn.read_idle(idle=1, limit=10) == b"" and conn.closed,
            "closed after a malformed request")
    conn = harness.Conn(server.http_port, timeout=30)
    # Connection: close honoured.
    conn.send(get_request("/cas/" + sha(a), extra=b"Connection: close\r\n"))
    status, headers, got_a = read_response(conn)
    c.equal((status, got_a, headers.get("connection")), (200, a, "close"),
            "Connection: close: answered with Connection: close")
    c.check(conn.read_idle(idle=1, limit=10) == b"" and conn.closed, "and the socket closed")
    # 413 with Expect: final status and close; the server still serves.
    conn = harness.Conn(server.http_port, timeout=30)
    conn.send(b"PUT /cas/%s HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % (sha(big).encode(), len(big)))
    status, headers, _ = read_response(conn)
    c.equal((status, headers.get("connection")), (413, "close"), "413 to Expect: then close")
    conn = harness.Conn(server.http_port, timeout=30)
    conn.send(get_request("/cas/" + sha(a)))
    c.equal(read_response(conn)[::2], (200, a), "a new connection is served after that")
    conn.sock.close()


# ----------------------------------------------------------------------------- http.client


def check_http_client(c, server):
    conn = server.client()
    blob = b"keep-alive blob"
    conn.request("PUT", "/cas/" + sha(blob), body=blob)
    r = conn.getresponse()
    r.read()
    sock = conn.sock
    c.equal(r.status, 200, "http.client PUT: 200")
    for i in range(20):
        conn.request("GET", "/cas/" + sha(blob), headers={"Accept-Encoding": "gzip"})
        r = conn.getresponse()
        if not c.equal((r.status, r.read()), (200, blob), "http.client GET %d" % i):
            break
    c.check(conn.sock is sock, "21 requests on one keep-alive connection")
    # Chunked upload from an iterator.
    parts = [os.urandom(random.randint(1, 50000)) for _ in range(20)]
    whole = b"".join(parts)
    conn.request("PUT", "/cas/" + sha(whole), body=iter(parts), encode_chunked=True)
    r = conn.getresponse()
    r.read()
    c.equal(r.status, 200, "http.client chunked PUT: 200")
    conn.request("GET", "/cas/" + sha(whole))
    r = conn.getresponse()
    c.check(r.status == 200 and r.read() == whole, "chunked blob read back")
    conn.request("HEAD", "/cas/" + sha(whole))
    r = conn.getresponse()
    r.read()
    c.equal((r.status, r.getheader("Content-Length")), (200, str(len(whole))),
            "http.client HEAD: 200 with the length")
    # Wrong digest over http.client, then the right bytes.
    conn.request("PUT", "/cas/" + sha(b"right"), body=b"wrong")
    r = conn.getresponse()
    r.read()
    c.equal(r.status, 400, "http.client PUT wrong digest: 400")
    conn.request("GET", "/cas/" + sha(b"right"))
    r = conn.getresponse()
    c.equal((r.status, r.read()), (404, b"not found\n"), "wrong digest never served")
    conn.request("PUT", "/cas/" + sha(b"right"), body=b"right")
    r = conn.getresponse()
    r.read()
    conn.request("GET", "/cas/" + sha(b"right"))
    r = conn.getresponse()
    c.equal((r.status, r.read()), (200, b"right"), "the right bytes are")
    c.check(conn.sock is sock, "the 400 kept the connection")
    conn.close()


def check_concurrent(c, server):
    """BLOBS blobs of 1 B .. 64 KiB, uploaded from THREADS threads, then read back."""
    rng = random.Random(12)
    blobs = [rng.randbytes(rng.choice([1, 40, 128, 1000, 5000, 65536]) - i % 7 + 7)
             for i in range(BLOBS)]
    failures = []

    def upload(part):
        conn = server.client()
        try:
            for blob in part:
                conn.request("PUT", "/cas/" + sha(blob), body=blob)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    failures.append("PUT %s: %d" % (sha(blob)[:8], r.status))
        except Exception as e:  # noqa: BLE001 - reported as a failure
            failures.append("upload: %r" % e)
        finally:
            conn.close()

    def download(part):
        conn = server.client()
        try:
            for blob in part:
                conn.request("GET", "/cas/" + sha(blob))
                r = conn.getresponse()
                data = r.read()
                if r.status != 200 or data != blob:
                    failures.append("GET %s: %d, %d bytes" % (sha(blob)[:8], r.status, len(data)))
        except Exception as e:  # noqa: BLE001
            failures.append("download: %r" % e)
        finally:
            conn.close()

    for work in (upload, download):
        threads = [threading.Thread(target=work, args=(blobs[i::THREADS],))
                   for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        c.check(not any(t.is_alive() for t in threads), "%s threads finished" % work.__name__)
    c.check(not failures, "%d blobs up and down from %d threads" % (BLOBS, THREADS),
            "; ".join(failures[:5]))


def check_big(c, server):
    big = os.urandom(BIG)
    digest = sha(big)
    conn = server.client(timeout=120)
    conn.request("PUT", "/cas/" + digest, body=big)
    r = conn.getresponse()
    r.read()
    c.equal(r.status, 200, "64 MiB PUT: 200")
    conn.request("GET", "/cas/" + digest)
    r = conn.getresponse()
    data = r.read()
    c.check(r.status == 200 and len(data) == BIG and data == big, "64 MiB GET byte-identical",
            "status %d, %d bytes" % (r.status, len(data)))
    conn.close()
    code, _ = curl(server, "HEAD", "/cas/" + digest)
    c.equal(code, 200, "64 MiB blob HEAD: 200")


def check_memcached_apart(c, server):
    blob = b"only over http"
    h = sha(blob).encode()
    c.equal(curl(server, "PUT", "/cas/" + sha(blob), blob)[0], 200, "PUT a blob over HTTP")
    conn = server.conn()
    c.equal(conn.get(h), None, "memcached get of the hex digest: nothing")
    c.equal(conn.set(h, b"memcached value"), b"STORED", "memcached set under the hex digest")
    c.equal(curl(server, "GET", "/cas/" + sha(blob))[0], 200, "the HTTP blob is intact")
    c.equal(curl(server, "GET", "/cas/" + sha(b"memcached value"))[0], 404,
            "memcached's item is not in the CAS")
    stats = conn.stats()
    c.check(int(stats.get("http_requests", "0")) > BLOBS * 2, "stats http_requests counts",
            repr({k: v for k, v in stats.items() if k.startswith("http_")}))
    c.check(int(stats.get("http_get_hits", "0")) >= BLOBS, "stats http_get_hits counts")
    c.check(int(stats.get("http_get_misses", "0")) > 0, "stats http_get_misses counts")
    c.check(int(stats.get("http_put_errors", "0")) > 0, "stats http_put_errors counts")
    conn.sock.close()


def main(args):
    harness.skip_unless_cinch(args, "HTTP cache")
    c = harness.Checker(args.verbose)
    with HttpServer(args.server, SERVER_ARGS) as server:
        for check in (check_curl, check_raw, check_http_client, check_concurrent, check_big,
                      check_memcached_apart):
            check(c, server)
            if not c.check(server.alive(), "server alive after %s" % check.__name__,
                           server.log()[-2000:]):
                break
    # The epoll loop too (the default is io_uring where the kernel allows it).
    with HttpServer(args.server, SERVER_ARGS + ["-o", "io_uring=0"]) as server:
        for check in (check_raw, check_http_client):
            check(c, server)
        c.check(server.alive(), "epoll server alive", server.log()[-2000:])
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=280)
