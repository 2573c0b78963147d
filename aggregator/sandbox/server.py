"""The HTTP plumbing: one threading server on 127.0.0.1, keep-alive, no per-request logging."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aggregator.sandbox.accounts import RequestLog
from aggregator.sandbox.wire import Reply, Request, json_reply

HANG_SECONDS = 600.0


class App:
    """What the server needs from the sandbox: a dispatcher, a latency, a stop signal, a log."""

    def __init__(
        self,
        dispatch: Callable[[Request], Reply],
        latency: float,
        stopping: threading.Event,
        log: Callable[[RequestLog], None],
    ) -> None:
        self.dispatch = dispatch
        self.latency = latency
        self.stopping = stopping
        self.log = log


class SandboxServer(ThreadingHTTPServer):
    # A thousand clients may connect at once; the default backlog of 5 would refuse them.
    request_queue_size = 1024
    daemon_threads = True
    # stop() must not wait for a hung handler or an idle keep-alive connection.
    block_on_close = False

    def __init__(self, app: App) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request (a timeout test, a cancelled benchmark) is
        # normal here; socketserver would print a traceback to stderr for each one.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Cut every open connection so their handler threads end."""
        with self.connections_lock:
            open_now = list(self.connections)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    disable_nagle_algorithm = True  # TCP_NODELAY: small answers must not wait for an ACK
    server: SandboxServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the client went away first
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        # A benchmark makes thousands of requests; a stderr line each would dominate.
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        arrived = time.monotonic()
        app = self.server.app
        try:
            body = self._read_body()
        except ValueError:
            self._send(json_reply(400, {"error": "Bad Request"}, outcome="bad_request"))
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        request = Request(
            method=self.command,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            reply = app.dispatch(request)
        except Exception as exc:  # a sandbox bug must show as a 500, not a dropped connection
            reply = json_reply(500, {"error": f"sandbox error: {exc!r}"}, outcome="crash")
        if reply.hang:
            app.log(RequestLog(arrived, reply.account, path, 0, reply.outcome))
            # Waits on the stop signal, so stop() frees it; other connections have own threads.
            app.stopping.wait(HANG_SECONDS)
            self.close_connection = True
            return
        if app.latency > 0:
            app.stopping.wait(app.latency)
        app.log(RequestLog(arrived, reply.account, path, reply.status, reply.outcome))
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        if reply.chunks is None:
            self.send_header("Content-Length", str(len(reply.body)))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.chunks is None:
            self.wfile.write(reply.body)
            return
        for chunk in reply.chunks:  # a client that hangs up ends this with an OSError
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")
