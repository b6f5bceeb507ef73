"""A scriptable HTTP server on 127.0.0.1 for crawl tests: routes, a request log, lazy bodies.

Each route is a function from the request to a ``Reply``; helpers build the usual ones (a static
file, a redirect, "fail N times then succeed", a slow answer, an endless lazily generated body).
The server records every request (arrival time, path, query, headers, bytes sent, whether the
client hung up early), so tests can assert what a crawler did, not only what it returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    """What a route answers. A bytes body gets a Content-Length; an iterable body is streamed
    close-delimited (no length), one chunk at a time, so huge bodies are never built in memory."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait before answering (stops early when the server shuts down)


@dataclass
class RequestRecord:
    """One request as the server saw it; ``done`` is set once the reply was sent or abandoned."""

    path: str
    query: str
    arrived_s: float  # time.monotonic() when the request line was read
    connected_s: float  # time.monotonic() when the server accepted the connection (less jitter)
    headers: dict[str, str]
    status: int = 0
    bytes_sent: int = 0
    client_gone: bool = False  # the client closed the connection before the body was complete
    answered_s: float | None = None  # time.monotonic() just before the reply's first byte
    finished_s: float | None = None  # time.monotonic() when the server was done with it
    done: threading.Event = field(default_factory=threading.Event)


Route = Callable[[RequestRecord], Reply]


def static(body: bytes, content_type: str, headers: dict[str, str] | None = None) -> Route:
    return lambda request: Reply(200, body, {"Content-Type": content_type, **(headers or {})})


def redirect(location: str, status: int = 302) -> Route:
    return lambda request: Reply(status, b"", {"Location": location})


def status(code: int, body: bytes = b"error") -> Route:
    return lambda request: Reply(code, body, {"Content-Type": "text/plain"})


def slow(delay_s: float, then: Route) -> Route:
    """Answer like ``then``, but only after ``delay_s`` seconds."""

    def route(request: RequestRecord) -> Reply:
        reply = then(request)
        reply.delay_s = delay_s
        return reply

    return route


def flaky(failures: int, then: Route, code: int = 503) -> Route:
    """The first ``failures`` requests get ``code``; later ones are answered by ``then``."""
    lock = threading.Lock()
    count = [0]

    def route(request: RequestRecord) -> Reply:
        with lock:
            count[0] += 1
            failing = count[0] <= failures
        return Reply(code, b"try later", {"Content-Type": "text/plain"}) if failing else then(request)

    return route


def endless(total_bytes: int, content_type: str, declare_length: bool = False,
            chunk_bytes: int = 64 * 1024) -> Route:
    """A ``total_bytes`` body of zeros generated chunk by chunk (optionally with its length)."""

    def chunks() -> Iterator[bytes]:
        block = bytes(chunk_bytes)
        for start in range(0, total_bytes, chunk_bytes):
            yield block[: min(chunk_bytes, total_bytes - start)]

    def route(request: RequestRecord) -> Reply:
        headers = {"Content-Type": content_type}
        if declare_length:
            headers["Content-Length"] = str(total_bytes)
        return Reply(200, chunks(), headers)

    return route


class HttpTestServer:
    """``with HttpTestServer(routes) as server:`` serves on 127.0.0.1:<free port> in a thread.

    Unknown paths get 404. ``server.url(path)`` builds URLs; ``server.requests`` is the log.
    """

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = dict(routes)
        self.requests: list[RequestRecord] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd: _TimedServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait_done(self, path: str, timeout_s: float = 5.0) -> list[RequestRecord]:
        """Requests to ``path`` once each has finished on the server side (or the timeout passed)."""
        deadline = time.monotonic() + timeout_s
        for record in self.hits(path):
            record.done.wait(max(0.0, deadline - time.monotonic()))
        return self.hits(path)

    def __enter__(self) -> HttpTestServer:
        self._httpd = _TimedServer(("127.0.0.1", 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="http-test-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _record(self, handler: BaseHTTPRequestHandler) -> RequestRecord:
        parts = urlsplit(handler.path)
        now = time.monotonic()
        connected_s = self._httpd.accepted_s.pop(id(handler.request), now) if self._httpd else now
        record = RequestRecord(parts.path, parts.query, now, connected_s, dict(handler.headers.items()))
        with self._lock:
            self.requests.append(record)
        return record


class _TimedServer(ThreadingHTTPServer):
    """Notes when each connection was accepted, on the one accepting thread, before a handler
    thread exists: request spacing measured there is not blurred by thread start-up."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.accepted_s: dict[int, float] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        self.accepted_s[id(request)] = time.monotonic()
        super().process_request(request, client_address)


def _handler_class(server: HttpTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # seconds a silent client may hold a server thread

        def do_GET(self) -> None:  # noqa: N802 - the http.server naming
            record = server._record(self)
            try:
                route = server.routes.get(record.path)
                reply = route(record) if route else Reply(404, b"not found", {"Content-Type": "text/plain"})
                if reply.delay_s and server.stopping.wait(reply.delay_s):
                    return
                self._send(record, reply)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                record.client_gone = True
            finally:
                record.finished_s = time.monotonic()
                record.done.set()

        def _send(self, record: RequestRecord, reply: Reply) -> None:
            record.status = reply.status
            record.answered_s = time.monotonic()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if isinstance(reply.body, bytes) and "Content-Length" not in reply.headers:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            for chunk in [reply.body] if isinstance(reply.body, bytes) else reply.body:
                if server.stopping.is_set():
                    return
                self.wfile.write(chunk)
                record.bytes_sent += len(chunk)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep stderr quiet
            return

    return Handler
