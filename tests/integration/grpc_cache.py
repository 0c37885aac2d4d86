#!/usr/bin/env python3
"""The gRPC front end (--grpc-port) with a real gRPC client: every RPC of REAPI v2's
Capabilities, ContentAddressableStorage and ActionCache and of google.bytestream.ByteStream.

The Python stubs are generated at test time, into a temporary directory, from the same .proto
files the server is built from (Debian's bazel-bootstrap-source tree), with protoc and
protobuf-compiler-grpc's grpc_python_plugin.

  python3 tests/integration/grpc_cache.py --server build/release/tools/cinchd
"""

import hashlib
import http.client
import importlib
import os
import signal
import subprocess
import sys
import tempfile

import harness

BAZEL_SOURCE = "/usr/src/bazel-bootstrap/third_party"
REAPI_ROOT = os.path.join(BAZEL_SOURCE, "remoteapis")
GOOGLEAPIS_ROOT = os.path.join(BAZEL_SOURCE, "googleapis")
PROTOS = [
    (REAPI_ROOT, "build/bazel/remote/execution/v2/remote_execution.proto", True),
    (REAPI_ROOT, "build/bazel/semver/semver.proto", False),
    (GOOGLEAPIS_ROOT, "google/api/annotations.proto", False),
    (GOOGLEAPIS_ROOT, "google/api/http.proto", False),
    (GOOGLEAPIS_ROOT, "google/bytestream/bytestream.proto", True),
    (GOOGLEAPIS_ROOT, "google/longrunning/operations.proto", False),
    (GOOGLEAPIS_ROOT, "google/rpc/status.proto", False),
]
CHUNK = 16 * 1024  # Bazel's ByteStream write chunk
MIB = 1 << 20
BIG = 20 * MIB
SERVER_ARGS = ["-m", "256", "-I", "32m", "-t", "2"]


def protoc(argv):
    r = subprocess.run(["protoc", "-I" + REAPI_ROOT, "-I" + GOOGLEAPIS_ROOT, "-I/usr/include"] +
                       argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:  # its warnings (unused imports in googleapis) only on failure
        raise RuntimeError("protoc %s failed:\n%s" % (" ".join(argv), r.stdout.decode()))


def generate_stubs(out_dir):
    """protoc --python_out and --grpc_python_out into out_dir; returns the stub modules."""
    protoc(["--python_out=" + out_dir] + [p for _, p, _ in PROTOS])
    protoc(["--grpc_out=" + out_dir, "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"] +
           [p for _, p, svc in PROTOS if svc])
    sys.path.insert(0, out_dir)
    mods = {}
    for name in ["build.bazel.remote.execution.v2.remote_execution_pb2",
                 "build.bazel.remote.execution.v2.remote_execution_pb2_grpc",
                 "google.bytestream.bytestream_pb2", "google.bytestream.bytestream_pb2_grpc"]:
        mods[name.rsplit(".", 1)[1]] = importlib.import_module(name)
    return mods


class Client:
    def __init__(self, mods, port):
        import grpc

        self.grpc = grpc
        self.re = mods["remote_execution_pb2"]
        re_grpc = mods["remote_execution_pb2_grpc"]
        self.bs = mods["bytestream_pb2"]
        self.channel = grpc.insecure_channel(
            "127.0.0.1:%d" % port, options=[("grpc.max_receive_message_length", 4 * MIB)])
        self.caps = re_grpc.CapabilitiesStub(self.channel)
        self.cas = re_grpc.ContentAddressableStorageStub(self.channel)
        self.ac = re_grpc.ActionCacheStub(self.channel)
        self.stream = mods["bytestream_pb2_grpc"].ByteStreamStub(self.channel)
        caps = self.caps.GetCapabilities(self.re.GetCapabilitiesRequest(), timeout=30)
        self.max_batch = caps.cache_capabilities.max_batch_total_size_bytes

    def digest(self, data):
        return self.re.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))

    def code(self, call):
        """The status code name of a call that is expected to fail ('OK' when it did not)."""
        try:
            call()
            return "OK"
        except self.grpc.RpcError as e:
            return e.code().name

    def missing(self, digests, instance=""):
        r = self.cas.FindMissingBlobs(self.re.FindMissingBlobsRequest(
            instance_name=instance, blob_digests=digests), timeout=30)
        return [(d.hash, d.size_bytes) for d in r.missing_blob_digests]

    def batch_update(self, pairs, instance=""):
        """pairs: (digest, data). Returns the per-blob status codes."""
        req = self.re.BatchUpdateBlobsRequest(instance_name=instance, requests=[
            self.re.BatchUpdateBlobsRequest.Request(digest=d, data=data) for d, data in pairs])
        return [r.status.code for r in self.cas.BatchUpdateBlobs(req, timeout=30).responses]

    def upload(self, blobs):
        """BatchUpdateBlobs in batches of at most max_batch_total_size_bytes, as clients do."""
        batch, size = [], 0
        for b in blobs + [None]:
            if b is None or (batch and size + len(b) > self.max_batch):
                codes = self.batch_update([(self.digest(x), x) for x in batch])
                assert all(c == 0 for c in codes), codes
                batch, size = [], 0
            if b is not None:
                batch.append(b)
                size += len(b)

    def write(self, data, digest=None, chunk=CHUNK, instance="main"):
        """ByteStream.Write in `chunk`-byte messages; returns committed_size."""
        d = digest or self.digest(data)
        name = "%s/uploads/6f1c9a2e-5b0d-4c1e-9a6f-%012d/blobs/%s/%d" % (
            instance, len(data), d.hash, d.size_bytes)

        def requests():
            offset = 0
            while True:
                piece = data[offset:offset + chunk]
                last = offset + len(piece) >= len(data)
                yield self.bs.WriteRequest(resource_name=name if offset == 0 else "",
                                           write_offset=offset, data=piece, finish_write=last)
                offset += len(piece)
                if last:
                    return

        return self.stream.Write(requests(), timeout=60).committed_size

    def read(self, digest, offset=0, limit=0, instance="main"):
        """ByteStream.Read; returns (bytes, largest response)."""
        name = "%s/blobs/%s/%d" % (instance, digest.hash, digest.size_bytes)
        parts = [r.data for r in self.stream.Read(self.bs.ReadRequest(
            resource_name=name, read_offset=offset, read_limit=limit), timeout=60)]
        return b"".join(parts), max([len(p) for p in parts] or [0])


def grpc_stats(s):
    with s.conn() as conn:
        st = conn.stats()
    return {k: int(v) for k, v in st.items() if k.startswith("grpc_")}


def check_call_counters(c, cl, s):
    """stats grpc_* and /metrics cinch_grpc_*: each call once, by how it ended."""
    before = grpc_stats(s)
    cl.caps.GetCapabilities(cl.re.GetCapabilitiesRequest(instance_name="main"), timeout=30)
    absent = cl.digest(b"no such action, for the call counters")
    c.equal(cl.code(lambda: cl.ac.GetActionResult(cl.re.GetActionResultRequest(
        instance_name="main", action_digest=absent), timeout=30)), "NOT_FOUND",
        "counters: a GetActionResult miss")
    bad = cl.re.Digest(hash="not a hash", size_bytes=1)
    c.equal(cl.code(lambda: cl.ac.GetActionResult(cl.re.GetActionResultRequest(
        instance_name="main", action_digest=bad), timeout=30)), "INVALID_ARGUMENT",
        "counters: a bad digest")
    after = grpc_stats(s)
    c.equal({k: after.get(k, 0) - before.get(k, 0) for k in
             ("grpc_calls", "grpc_not_found", "grpc_errors")},
            {"grpc_calls": 3, "grpc_not_found": 1, "grpc_errors": 1},
            "stats grpc_*: three calls, one NOT_FOUND, one error")
    c.equal(after.get("grpc_curr_calls"), 0, "stats grpc_curr_calls: none open")
    conn = http.client.HTTPConnection("127.0.0.1", s.ports["http"], timeout=30)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    conn.close()
    samples = {}
    for line in body.splitlines():
        if line.startswith("cinch_grpc_"):
            name, value = line.split()
            samples[name] = float(value)
    now = grpc_stats(s)
    c.check(samples.get("cinch_grpc_calls_total", -1) == after["grpc_calls"] and
            now["grpc_calls"] == after["grpc_calls"] and
            samples.get("cinch_grpc_not_found_total") == after["grpc_not_found"] and
            samples.get("cinch_grpc_errors_total") == after["grpc_errors"] and
            samples.get("cinch_grpc_current_calls") == 0,
            "/metrics cinch_grpc_* are the stats", "%r vs %r" % (samples, after))


def check_capabilities(c, cl):
    caps = cl.caps.GetCapabilities(cl.re.GetCapabilitiesRequest(instance_name="main"), timeout=30)
    cc = caps.cache_capabilities
    c.check(cl.re.DigestFunction.SHA256 in cc.digest_function, "capabilities: SHA256",
            str(list(cc.digest_function)))
    c.check(cc.action_cache_update_capabilities.update_enabled,
            "capabilities: action cache update enabled")
    c.check(0 < cc.max_batch_total_size_bytes <= 4 * MIB,
            "capabilities: max_batch_total_size_bytes in (0, 4 MiB]",
            str(cc.max_batch_total_size_bytes))
    c.equal(cc.symlink_absolute_path_strategy, cl.re.SymlinkAbsolutePathStrategy.ALLOWED,
            "capabilities: absolute symlinks allowed")
    low, high = caps.low_api_version, caps.high_api_version
    c.check((low.major, low.minor) <= (2, 0) <= (high.major, high.minor) and high.major == 2,
            "capabilities: api 2.0 within [low, high] (Bazel's check)",
            "%d.%d .. %d.%d" % (low.major, low.minor, high.major, high.minor))
    c.check(not caps.HasField("execution_capabilities"), "capabilities: no execution")


def check_cas_batches(c, cl):
    blobs = [b"grpc-cache blob %d " % i * (i + 1) for i in range(3)]
    digests = [cl.digest(b) for b in blobs]
    empty = cl.digest(b"")
    want = [(d.hash, d.size_bytes) for d in digests]
    c.equal(cl.missing(digests + [empty]), want,
            "FindMissingBlobs before: all three missing, the empty blob never is")
    c.equal(cl.batch_update(list(zip(digests, blobs)), instance="main"), [0, 0, 0],
            "BatchUpdateBlobs: OK for each blob")
    c.equal(cl.missing(digests, instance="other"), [],
            "FindMissingBlobs after (another instance name: one cache)")

    # A wrong digest: INVALID_ARGUMENT for that blob only, and nothing stored under either hash.
    bad_data = b"these bytes are not what the digest says"
    liar = cl.digest(b"something else entirely, of another length")
    liar.size_bytes = len(bad_data)
    good = b"a good blob beside a bad one"
    codes = cl.batch_update([(liar, bad_data), (cl.digest(good), good)])
    c.equal(codes, [cl.grpc.StatusCode.INVALID_ARGUMENT.value[0], 0],
            "BatchUpdateBlobs: wrong digest -> INVALID_ARGUMENT, the other blob OK")
    c.equal(len(cl.missing([liar, cl.digest(bad_data)])), 2,
            "wrong digest: nothing stored under the claimed or the real hash")
    wrong_size = cl.digest(good)
    wrong_size.size_bytes += 1
    c.equal(cl.batch_update([(wrong_size, good)]), [cl.grpc.StatusCode.INVALID_ARGUMENT.value[0]],
            "BatchUpdateBlobs: size that is not the data's -> INVALID_ARGUMENT")
    c.equal(cl.code(lambda: cl.missing([cl.re.Digest(hash="xyz", size_bytes=1)])),
            "INVALID_ARGUMENT", "FindMissingBlobs: malformed digest")

    absent = cl.digest(b"never uploaded")
    r = cl.cas.BatchReadBlobs(cl.re.BatchReadBlobsRequest(digests=digests + [absent, empty]),
                              timeout=30)
    c.equal([x.status.code for x in r.responses], [0, 0, 0, 5, 0],
            "BatchReadBlobs: OK x3, NOT_FOUND for the absent blob, OK for the empty one")
    c.check([x.data for x in r.responses[:3]] == blobs and r.responses[4].data == b"",
            "BatchReadBlobs: exact bytes")
    c.equal([x.digest.hash for x in r.responses], [d.hash for d in digests + [absent, empty]],
            "BatchReadBlobs: responses name their digests in order")
    too_many = [cl.re.Digest(hash=absent.hash, size_bytes=3 * MIB)] * 2
    c.equal(cl.code(lambda: cl.cas.BatchReadBlobs(
        cl.re.BatchReadBlobsRequest(digests=too_many), timeout=30)), "INVALID_ARGUMENT",
        "BatchReadBlobs above max_batch_total_size_bytes")


def directory(cl, files=(), dirs=()):
    """A Directory message: files as (name, digest), dirs as (name, digest), sorted by name."""
    d = cl.re.Directory()
    for name, dg in sorted(files, key=lambda x: x[0]):
        d.files.add(name=name, digest=dg)
    for name, dg in sorted(dirs, key=lambda x: x[0]):
        d.directories.add(name=name, digest=dg)
    return d


def check_get_tree(c, cl):
    f1, f2 = b"tree file one", b"tree file two"
    leaf = directory(cl, files=[("two.txt", cl.digest(f2))])
    leaf_b = directory(cl, files=[("one-again.txt", cl.digest(f1))])
    mid = directory(cl, files=[("one.txt", cl.digest(f1))],
                    dirs=[("c", cl.digest(leaf.SerializeToString()))])
    root = directory(cl, files=[("one.txt", cl.digest(f1))],
                     dirs=[("a", cl.digest(mid.SerializeToString())),
                           ("b", cl.digest(leaf_b.SerializeToString()))])
    dirs = [root, mid, leaf_b, leaf]  # breadth first
    cl.upload([f1, f2] + [d.SerializeToString() for d in dirs])
    root_digest = cl.digest(root.SerializeToString())

    pages = list(cl.cas.GetTree(cl.re.GetTreeRequest(root_digest=root_digest), timeout=30))
    got = [d for p in pages for d in p.directories]
    c.equal(sorted(d.SerializeToString() for d in got),
            sorted(d.SerializeToString() for d in dirs), "GetTree: the root and its 3 descendants")
    c.equal(pages[-1].next_page_token, "", "GetTree: the last page has no next_page_token")

    # page_size 1: follow the tokens with new requests, one page each.
    seen, token, calls = [], "", 0
    while calls < 10:
        calls += 1
        stream = cl.cas.GetTree(cl.re.GetTreeRequest(
            instance_name="main", root_digest=root_digest, page_size=1, page_token=token),
            timeout=30)
        page = next(iter(stream))
        stream.cancel()
        c.check(len(page.directories) == 1, "GetTree page_size=1: one directory per page",
                str(len(page.directories)))
        seen.extend(page.directories)
        token = page.next_page_token
        if not token:
            break
    c.equal([d.SerializeToString() for d in seen], [d.SerializeToString() for d in got],
            "GetTree: paging by page_token gives the same directories in the same order")
    c.equal(calls, 4, "GetTree: 4 pages of 1")

    c.equal(cl.code(lambda: list(cl.cas.GetTree(cl.re.GetTreeRequest(
        root_digest=cl.digest(b"no such directory")), timeout=30))), "NOT_FOUND",
        "GetTree: missing root")
    c.equal(cl.code(lambda: list(cl.cas.GetTree(cl.re.GetTreeRequest(
        root_digest=root_digest, page_token="x"), timeout=30))), "INVALID_ARGUMENT",
        "GetTree: bad page_token")


def check_bytestream(c, cl):
    data = bytes((i * 7 + (i >> 9)) & 0xff for i in range(100_000))
    d = cl.digest(data)
    c.equal(cl.missing([d]), [(d.hash, d.size_bytes)], "ByteStream: blob missing before")
    c.equal(cl.write(data), len(data), "ByteStream.Write in 16 KiB chunks: committed_size = size")
    c.equal(cl.missing([d]), [], "ByteStream.Write: blob present after")
    got, _ = cl.read(d)
    c.check(got == data, "ByteStream.Read: the whole blob")
    got, _ = cl.read(d, offset=50_000)
    c.check(got == data[50_000:], "ByteStream.Read: read_offset 50000")
    got, _ = cl.read(d, offset=12_345, limit=1000, instance="")
    c.check(got == data[12_345:13_345], "ByteStream.Read: read_offset + read_limit, no instance")
    got, _ = cl.read(d, offset=len(data))
    c.equal(got, b"", "ByteStream.Read: read_offset = size reads nothing")
    c.equal(cl.code(lambda: cl.read(d, offset=len(data) + 1)), "OUT_OF_RANGE",
            "ByteStream.Read: read_offset beyond the blob")
    c.equal(cl.code(lambda: cl.read(cl.digest(b"absent blob"))), "NOT_FOUND",
            "ByteStream.Read: a missing blob")
    c.equal(cl.code(lambda: cl.read(cl.digest(b"absent blob"), offset=11)), "NOT_FOUND",
            "ByteStream.Read: a missing blob at read_offset = size")
    c.equal(cl.read(cl.digest(b"")), (b"", 0), "ByteStream.Read: the empty blob, never written")
    wrong_size = cl.re.Digest(hash=d.hash, size_bytes=len(data) + 1_000_000)
    c.equal(cl.code(lambda: cl.read(wrong_size)), "NOT_FOUND",
            "ByteStream.Read: the right hash with another size is not that blob")
    c.equal(len(cl.missing([wrong_size])), 1, "FindMissingBlobs: the right hash, another size")
    r = cl.cas.BatchReadBlobs(cl.re.BatchReadBlobsRequest(digests=[wrong_size]), timeout=30)
    c.equal([x.status.code for x in r.responses], [5],
            "BatchReadBlobs: the right hash with another size -> NOT_FOUND")
    c.equal(cl.write(data), len(data), "ByteStream.Write of a present blob: committed_size = size")

    # A wrong digest: nothing stored.
    other = data[:-1] + b"!"
    c.equal(cl.code(lambda: cl.write(other, digest=d.__class__(hash=cl.digest(data[::-1]).hash,
                                                                  size_bytes=len(other)))),
            "INVALID_ARGUMENT", "ByteStream.Write: data not matching the digest")
    c.equal(cl.missing([cl.digest(other)]), [(cl.digest(other).hash, len(other))],
            "ByteStream.Write with a wrong digest stores nothing")
    c.equal(cl.code(lambda: cl.write(b"short", digest=cl.re.Digest(
        hash=cl.digest(b"short!").hash, size_bytes=6))), "INVALID_ARGUMENT",
        "ByteStream.Write: fewer bytes than the size")

    # Resource names.
    bad = "main/uploads/u/blobs/%s" % d.hash
    c.equal(cl.code(lambda: cl.stream.Write(iter([cl.bs.WriteRequest(
        resource_name=bad, data=b"x", finish_write=True)]), timeout=30)), "INVALID_ARGUMENT",
        "ByteStream.Write: malformed resource name")
    zstd = "uploads/u/compressed-blobs/zstd/%s/%d" % (d.hash, len(data))
    c.equal(cl.code(lambda: cl.stream.Write(iter([cl.bs.WriteRequest(
        resource_name=zstd, data=b"x", finish_write=True)]), timeout=30)), "UNIMPLEMENTED",
        "ByteStream.Write: compressed-blobs")
    c.equal(cl.code(lambda: list(cl.stream.Read(cl.bs.ReadRequest(
        resource_name="main/blobs/nothex/5"), timeout=30))), "INVALID_ARGUMENT",
        "ByteStream.Read: malformed resource name")

    # QueryWriteStatus.
    def status(dg):
        r = cl.stream.QueryWriteStatus(cl.bs.QueryWriteStatusRequest(
            resource_name="main/uploads/q/blobs/%s/%d" % (dg.hash, dg.size_bytes)), timeout=30)
        return r.committed_size, r.complete
    c.equal(status(d), (len(data), True), "QueryWriteStatus: a stored blob is complete")
    c.equal(status(cl.digest(b"not yet")), (0, False),
            "QueryWriteStatus: an absent blob has nothing committed")


def check_big_blob(c, cl):
    data = os.urandom(BIG)
    d = cl.digest(data)
    c.equal(cl.write(data), BIG, "20 MiB blob: ByteStream.Write in 16 KiB chunks")
    got, largest = cl.read(d)
    c.check(got == data, "20 MiB blob: read back byte for byte")
    c.check(0 < largest <= MIB, "20 MiB blob: each ReadResponse at most 1 MiB", str(largest))
    got, _ = cl.read(d, offset=BIG - 3 * MIB - 5)
    c.check(got == data[BIG - 3 * MIB - 5:], "20 MiB blob: resumed at a read_offset")


def check_concurrent(c, cl):
    """More calls at once than the server has threads (8 at -m 256): they queue on the
    connection's stream limit and all succeed, none refused RESOURCE_EXHAUSTED."""
    from concurrent.futures import ThreadPoolExecutor

    blobs = [os.urandom(200_000 + i) for i in range(40)]

    def round_trip(b):
        try:
            if cl.write(b) != len(b):
                return "short commit"
            return "OK" if cl.read(cl.digest(b))[0] == b else "wrong bytes"
        except cl.grpc.RpcError as e:
            return e.code().name

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(round_trip, blobs))
    c.equal([r for r in results if r != "OK"], [],
            "40 concurrent ByteStream write+read round trips on one channel")


def check_action_cache(c, cl):
    out = b"output file of the action"
    out_err = b"warning: from stderr"
    tree_file = b"a file inside an output directory"
    tree = cl.re.Tree(root=directory(cl, files=[("f", cl.digest(tree_file))]),
                      children=[directory(cl, files=[("g", cl.digest(out))])])
    tree_blob = tree.SerializeToString()
    cl.upload([out, out_err, tree_file, tree_blob])
    result = cl.re.ActionResult(exit_code=0, stderr_digest=cl.digest(out_err))
    result.output_files.add(path="bazel-out/x", digest=cl.digest(out), is_executable=True)
    result.output_directories.add(path="bazel-out/d", tree_digest=cl.digest(tree_blob))
    result.output_symlinks.add(path="bazel-out/l", target="/absolute/target")
    result.stdout_raw = b"inline stdout"
    action = cl.digest(b"the action")

    def get(a):
        return cl.ac.GetActionResult(cl.re.GetActionResultRequest(
            instance_name="main", action_digest=a), timeout=30)

    c.equal(cl.code(lambda: get(action)), "NOT_FOUND", "GetActionResult: miss before update")
    back = cl.ac.UpdateActionResult(cl.re.UpdateActionResultRequest(
        instance_name="main", action_digest=action, action_result=result), timeout=30)
    c.equal(back, result, "UpdateActionResult returns the stored result")
    c.equal(get(action), result, "GetActionResult: the result as stored")

    # A result referencing a blob that was never uploaded is a miss until it is.
    def incomplete(missing_blob, how):
        r = cl.re.ActionResult()
        r.CopyFrom(result)
        how(r, missing_blob)
        a = cl.digest(b"action needing " + missing_blob)
        cl.ac.UpdateActionResult(cl.re.UpdateActionResultRequest(
            action_digest=a, action_result=r), timeout=30)
        return a

    cases = [
        ("an output file", lambda r, b: r.output_files.add(path="y", digest=cl.digest(b))),
        ("stdout", lambda r, b: r.stdout_digest.CopyFrom(cl.digest(b))),
        ("an output directory's Tree", lambda r, b: r.output_directories.add(
            path="t", tree_digest=cl.digest(b))),
    ]
    for what, how in cases:
        blob = b"the missing blob for " + what.encode()
        a = incomplete(blob, how)
        c.equal(cl.code(lambda: get(a)), "NOT_FOUND",
                "GetActionResult: %s missing from the CAS -> NOT_FOUND" % what)
        if what == "an output directory's Tree":
            blob = cl.re.Tree(root=directory(cl, files=[("z", cl.digest(b"tree leaf"))]))
            blob = blob.SerializeToString()
            a = incomplete(blob, how)
            cl.upload([blob])
            c.equal(cl.code(lambda: get(a)), "NOT_FOUND",
                    "GetActionResult: a file of an output directory's Tree missing -> NOT_FOUND")
            blob = b"tree leaf"
        cl.upload([blob])
        c.equal(cl.code(lambda: get(a)), "OK",
                "GetActionResult: found once %s's blob is uploaded" % what)

    c.equal(cl.code(lambda: get(cl.re.Digest(hash="00", size_bytes=1))), "INVALID_ARGUMENT",
            "GetActionResult: malformed digest")


def check_http_and_grpc(c, cl, http_port):
    """One BuildCache behind both front ends: what one writes, the other reads."""
    def request(method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
        try:
            conn.request(method, path, body=body)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    via_grpc = b"written through ByteStream, read over HTTP " * 100
    cl.write(via_grpc)
    c.equal(request("GET", "/cas/" + cl.digest(via_grpc).hash), (200, via_grpc),
            "a blob written over gRPC: HTTP GET /cas/ returns it")
    via_http = b"written over HTTP, read through ByteStream " * 100
    status, _ = request("PUT", "/main/cas/" + cl.digest(via_http).hash, via_http)
    c.check(status in (200, 201, 204), "HTTP PUT /main/cas/", str(status))
    c.equal(cl.read(cl.digest(via_http))[0], via_http, "a blob PUT over HTTP: ByteStream reads it")

    out = b"an output the HTTP client will look for"
    result = cl.re.ActionResult(exit_code=0)
    result.output_files.add(path="o", digest=cl.digest(out))
    action = cl.digest(b"an action shared by both protocols")
    cl.ac.UpdateActionResult(cl.re.UpdateActionResultRequest(
        action_digest=action, action_result=result), timeout=30)
    c.equal(request("GET", "/ac/" + action.hash)[0], 404,
            "HTTP GET /ac/ of a result whose output is missing: 404")
    request("PUT", "/cas/" + cl.digest(out).hash, out)
    c.equal(request("GET", "/ac/" + action.hash), (200, result.SerializeToString()),
            "HTTP GET /ac/ once the output is there: the ActionResult written over gRPC")


def check_eviction(c, mods, args):
    """-m 64 and four times as many bytes written: the engine evicts, RSS stays under -m, and
    an action result is served exactly while the blob it references is still in the CAS."""
    with harness.FrontEndServer(args.server, ["-m", "64", "-t", "2"], ["grpc"]) as s:
        cl = Client(mods, s.ports["grpc"])
        outputs = [(b"evictable output %d " % i) * 5000 for i in range(20)]  # ~100 KB each
        cl.upload(outputs)
        actions = []
        for i, out in enumerate(outputs):
            r = cl.re.ActionResult()
            r.output_files.add(path="out", digest=cl.digest(out))
            a = cl.digest(b"evictable action %d" % i)
            cl.ac.UpdateActionResult(cl.re.UpdateActionResultRequest(
                action_digest=a, action_result=r), timeout=30)
            actions.append(a)
        peak = 0
        for i in range(32):  # 32 x 40 x 100 KB: 128 MB through a 64 MiB process
            cl.upload([os.urandom(100_000) for _ in range(40)])
            peak = max(peak, s.rss_kib() or 0)
        evicted = len(cl.missing([cl.digest(o) for o in outputs]))
        c.check(evicted > 0, "-m 64 after 128 MB of blobs: some early outputs were evicted")
        c.note("%d of %d early outputs evicted; peak RSS %d KiB" % (evicted, len(outputs), peak))
        for out, a in zip(outputs, actions):
            gone = bool(cl.missing([cl.digest(out)]))
            code = cl.code(lambda: cl.ac.GetActionResult(
                cl.re.GetActionResultRequest(action_digest=a), timeout=30))
            c.check(code in ("OK", "NOT_FOUND") and not (gone and code == "OK"),
                    "action %s: no result served whose output is gone" % a.hash[:8],
                    "output gone: %s, GetActionResult: %s" % (gone, code))
        if os.environ.get("CINCH_SANITIZE"):
            c.skip("RSS under -m 64", "sanitizer shadow memory")
        else:
            c.check(peak <= 64 * 1024, "RSS under -m 64 while gRPC writes 128 MB",
                    "peak %d KiB" % peak)
        cl.channel.close()


def check_ac_check_off(c, mods, args):
    """-o ac_check=0 (a cache sharded by digest): results are served whatever they reference."""
    with harness.FrontEndServer(args.server, SERVER_ARGS + ["-o", "ac_check=0"],
                                ["grpc", "http"]) as s:
        cl = Client(mods, s.ports["grpc"])
        result = cl.re.ActionResult(exit_code=0)
        result.output_files.add(path="out", digest=cl.digest(b"an output on another shard"))
        action = cl.digest(b"an action whose output is elsewhere")
        cl.ac.UpdateActionResult(cl.re.UpdateActionResultRequest(
            action_digest=action, action_result=result), timeout=30)
        got = cl.code(lambda: cl.ac.GetActionResult(cl.re.GetActionResultRequest(
            action_digest=action), timeout=30))
        c.equal(got, "OK", "ac_check=0: a result whose output is absent is served (gRPC)")
        conn = http.client.HTTPConnection("127.0.0.1", s.ports["http"], timeout=30)
        conn.request("GET", "/ac/" + action.hash)
        c.equal(conn.getresponse().status, 200, "ac_check=0: ... and over HTTP")
        conn.close()
        cl.channel.close()


def main(args):
    harness.skip_unless_cinch(args, "gRPC front end")
    c = harness.Checker(args.verbose)
    with tempfile.TemporaryDirectory(prefix="cinch-grpc-stubs-") as stubs:
        mods = generate_stubs(stubs)
        with harness.FrontEndServer(args.server, SERVER_ARGS, ["grpc", "http"]) as s:
            cl = Client(mods, s.ports["grpc"])
            check_capabilities(c, cl)
            check_call_counters(c, cl, s)
            check_cas_batches(c, cl)
            check_get_tree(c, cl)
            check_bytestream(c, cl)
            check_big_blob(c, cl)
            check_concurrent(c, cl)
            check_http_and_grpc(c, cl, s.ports["http"])
            check_action_cache(c, cl)
            # The build cache counts what either front end did (stats buildcache_*).
            with s.conn() as conn:
                st = conn.stats()
            c.check(int(st.get("buildcache_cas_stored", "0")) > 0 and
                    int(st.get("buildcache_cas_hits", "0")) > 0 and
                    int(st.get("buildcache_ac_stored", "0")) > 0,
                    "stats buildcache_* count the gRPC calls",
                    repr({k: v for k, v in st.items() if k.startswith("buildcache_")}))
            # SIGTERM with the channel open (and a call's connection idle): a clean exit.
            s.proc.send_signal(signal.SIGTERM)
            code = harness.wait_exit(s.proc, 10)
            c.equal(code, 0, "SIGTERM with a gRPC client connected: exit status")
            cl.channel.close()
            if code != 0:
                print(s.log()[-3000:])
        check_eviction(c, mods, args)
        check_ac_check_off(c, mods, args)
    return c.finish()


if __name__ == "__main__":
    harness.run(main, harness.parse_args(__doc__), time_limit=240)
