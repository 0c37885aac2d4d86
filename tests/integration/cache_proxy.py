"""Pass-through proxies that record what a build-cache client asks and what the cache answers.

bazel_cache.py puts one between Bazel and cinchd to see traffic Bazel does not report: Bazel 4
silently runs an action itself when the cache hands it an action result whose outputs are gone
(a CAS read answered 404 / NOT_FOUND), so only the requests show whether that happened.

  HttpProxy(upstream_port):  HTTP/1.1 (keep-alive) on a free loopback port; records
                             (method, path, status) of each request.
  GrpcProxy(upstream_port):  gRPC (plaintext HTTP/2); forwards every method as raw bytes,
                             records (method, status code name) of each call.

Both are context managers; .url is what the client is given, .records the list (thread-safe).
"""

import http.client
import http.server
import threading
from concurrent import futures


class _Records:
    def __init__(self):
        self._lock = threading.Lock()
        self._items = []

    def add(self, item):
        with self._lock:
            self._items.append(item)

    @property
    def records(self):
        with self._lock:
            return list(self._items)


class HttpProxy(_Records):
    def __init__(self, upstream_port, host="127.0.0.1"):
        super().__init__()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = None
                if "Content-Length" in self.headers:
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                if not hasattr(self, "upstream"):
                    self.upstream = http.client.HTTPConnection(host, upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "host")}
                for attempt in (1, 2):  # once more if cinchd closed the idle connection
                    try:
                        self.upstream.request(self.command, self.path, body=body,
                                              headers=headers)
                        reply = self.upstream.getresponse()
                        break
                    except (http.client.RemoteDisconnected, ConnectionError):
                        self.upstream.close()
                        if attempt == 2:
                            raise
                data = reply.read()
                proxy.add((self.command, self.path, reply.status))
                self.send_response(reply.status)
                for k, v in reply.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                         "content-length"):
                        self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                elif reply.getheader("Content-Length") is not None:
                    self.send_header("Content-Length", reply.getheader("Content-Length"))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

        self._server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.url = "http://%s:%d" % (host, self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        return False


class GrpcProxy(_Records):
    def __init__(self, upstream_port, host="127.0.0.1"):
        import grpc  # python3-grpcio; only this proxy needs it

        super().__init__()
        options = [("grpc.max_receive_message_length", -1),
                   ("grpc.max_send_message_length", -1)]
        self._channel = grpc.insecure_channel("%s:%d" % (host, upstream_port), options=options)
        proxy, channel = self, self._channel

        class Handler(grpc.GenericRpcHandler):
            def service(self, details):
                method = details.method
                metadata = [(k, v) for k, v in details.invocation_metadata
                            if not k.startswith((":", "grpc-")) and k != "user-agent"]

                def forward(requests, context):
                    call = channel.stream_stream(method)  # bytes in, bytes out
                    try:
                        for reply in call(requests, metadata=metadata):
                            yield reply
                    except grpc.RpcError as e:
                        proxy.add((method, e.code().name))
                        context.abort(e.code(), e.details() or "")
                    proxy.add((method, "OK"))

                return grpc.stream_stream_rpc_method_handler(forward)

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                                   handlers=[Handler()], options=options)
        port = self._server.add_insecure_port("%s:0" % host)
        self.url = "grpc://%s:%d" % (host, port)

    def __enter__(self):
        self._server.start()
        return self

    def __exit__(self, *exc):
        self._server.stop(grace=None)
        self._channel.close()
        return False
