#!/usr/bin/env python3
"""Build-cache throughput, side by side in one run: cinchd over HTTP and gRPC, memcached.

  * small: N CAS blobs of 40-128 B uploaded, then read back:
      HTTP  PUT/GET /cas/<hex>, pipelined on one keep-alive connection (batches of 2,000);
      gRPC  BatchUpdateBlobs / BatchReadBlobs (batches of 2,000, as REAPI clients batch);
      memcached `set`/`get` under the hex digest, pipelined likewise.
  * large: one 64 MiB blob, uploaded once and read back 3 times (best read counts):
      HTTP  PUT / GET (http.client);
      gRPC  ByteStream.Write in Bazel's 16 KiB chunks / ByteStream.Read;
      memcached `set` / `get` (-I 128m).
Throughput is client-bound for small blobs (one Python client); the ratios hold.

  python3 bench/buildcache_throughput.py --cinchd build/release/tools/cinchd [--blobs 200000]
"""

import argparse
import hashlib
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import grpc_cache  # noqa: E402
import harness  # noqa: E402

BATCH = 2000
MIB = 1 << 20
LARGE = 64 * MIB


def small_blobs(n):
    rng = random.Random(7)
    out = []
    for _ in range(n):
        body = rng.randbytes(rng.randint(40, 128))
        out.append((hashlib.sha256(body).hexdigest(), body))
    return out


def drain(sock, count, marker):
    seen, tail = 0, b""
    while seen < count:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("server closed")
        buf = tail + chunk
        seen += buf.count(marker)
        tail = buf[-(len(marker) - 1):]


def pipelined(port, requests, marker):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.time()
    for i in range(0, len(requests), BATCH):
        batch = requests[i:i + BATCH]
        s.sendall(b"".join(batch))
        drain(s, len(batch), marker)
    took = time.time() - t0
    s.close()
    return took


def http_small(port, blobs):
    put = [b"PUT /cas/%s HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n%s"
           % (h.encode(), len(b), b) for h, b in blobs]
    get = [b"GET /cas/%s HTTP/1.1\r\nHost: b\r\n\r\n" % h.encode() for h, _ in blobs]
    return pipelined(port, put, b"HTTP/1.1 200"), pipelined(port, get, b"HTTP/1.1 200")


def memcached_small(port, blobs):
    put = [b"set %s 0 0 %d\r\n%s\r\n" % (h.encode(), len(b), b) for h, b in blobs]
    get = [b"get %s\r\n" % h.encode() for h, _ in blobs]
    return pipelined(port, put, b"STORED\r\n"), pipelined(port, get, b"END\r\n")


def grpc_small(client, blobs):
    re = client.re
    t0 = time.time()
    for i in range(0, len(blobs), BATCH):
        client.batch_update([(client.digest(b), b) for _, b in blobs[i:i + BATCH]])
    put = time.time() - t0
    t0 = time.time()
    for i in range(0, len(blobs), BATCH):
        req = re.BatchReadBlobsRequest(digests=[client.digest(b) for _, b in blobs[i:i + BATCH]])
        r = client.cas.BatchReadBlobs(req, timeout=60)
        assert all(x.status.code == 0 for x in r.responses)
    return put, time.time() - t0


def best_of(n, f):
    return min(f() for _ in range(n))


def http_large(port, data, hexd):
    def put():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t0 = time.time()
        c.request("PUT", "/cas/" + hexd, body=data)
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
        c.close()
        return time.time() - t0

    def get():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t0 = time.time()
        c.request("GET", "/cas/" + hexd)
        body = c.getresponse().read()
        assert len(body) == len(data)
        c.close()
        return time.time() - t0

    return put(), best_of(3, get)  # one upload: later ones of a present blob only hash


def grpc_large(client, data):
    d = client.digest(data)

    def put():
        t0 = time.time()
        assert client.write(data, d) == len(data)
        return time.time() - t0

    def get():
        t0 = time.time()
        got, _ = client.read(d)
        assert len(got) == len(data)
        return time.time() - t0

    return put(), best_of(3, get)


def memcached_large(port, data):
    def put():
        s = socket.create_connection(("127.0.0.1", port))
        t0 = time.time()
        s.sendall(b"set big 0 0 %d\r\n" % len(data) + data + b"\r\n")
        drain(s, 1, b"STORED\r\n")
        s.close()
        return time.time() - t0

    def get():
        s = socket.create_connection(("127.0.0.1", port))
        t0 = time.time()
        s.sendall(b"get big\r\n")
        drain(s, 1, b"END\r\n")
        s.close()
        return time.time() - t0

    return put(), best_of(3, get)


def start(argv, port):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 10
    while not harness.can_connect(port):
        if time.time() > end:
            proc.kill()
            raise RuntimeError("%s did not start" % argv[0])
        time.sleep(0.05)
    return proc


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cinchd", required=True)
    p.add_argument("--memcached", default="/usr/bin/memcached")
    p.add_argument("--blobs", type=int, default=200_000)
    args = p.parse_args()
    root = ["-u", "root"] if os.geteuid() == 0 else []
    blobs = small_blobs(args.blobs)
    large = random.Random(3).randbytes(LARGE)
    large_hex = hashlib.sha256(large).hexdigest()
    n = len(blobs)
    rows = []
    mc_port, c_port, h_port, g_port = (harness.free_port() for _ in range(4))
    cinchd = start([args.cinchd, *root, "-p", str(c_port), "-l", "127.0.0.1", "-m", "1024",
                    "-I", "128m", "-t", "2", "--http-port", str(h_port),
                    "--grpc-port", str(g_port)], h_port)
    try:
        with tempfile.TemporaryDirectory() as stubs:
            client = grpc_cache.Client(grpc_cache.generate_stubs(stubs), g_port)
            hp, hg = http_small(h_port, blobs)
            rows.append(("cinchd HTTP", n / hp, n / hg) + tuple(
                LARGE / MIB / t for t in http_large(h_port, large, large_hex)))
            gp, gg = grpc_small(client, small_blobs(args.blobs // 2))  # new blobs: half as many
            rows.append(("cinchd gRPC", (n // 2) / gp, (n // 2) / gg) + tuple(
                LARGE / MIB / t for t in grpc_large(client, large[1:] + b"g")))  # a new blob
    finally:
        cinchd.terminate()
        cinchd.wait(10)
    mc = start([args.memcached, *root, "-p", str(mc_port), "-l", "127.0.0.1", "-U", "0", "-m",
                "1024", "-I", "128m", "-t", "2"], mc_port)
    try:
        mp, mg = memcached_small(mc_port, blobs)
        rows.append(("memcached (hex keys)", n / mp, n / mg) + tuple(
            LARGE / MIB / t for t in memcached_large(mc_port, large)))
    finally:
        mc.terminate()
        mc.wait(10)
    print("%d small blobs (40-128 B; gRPC: %d), one 64 MiB blob (one upload, best of 3 reads)" % (n, n // 2))
    print("| server | small uploads/s | small reads/s | 64 MiB upload MB/s | 64 MiB read MB/s |")
    print("| --- | --- | --- | --- | --- |")
    for name, sp, sg, lp, lg in rows:
        print("| %s | %.0f | %.0f | %.0f | %.0f |" % (name, sp, sg, lp * 1.048576, lg * 1.048576))
    return 0


if __name__ == "__main__":
    sys.exit(main())
