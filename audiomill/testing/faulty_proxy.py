"""An HTTP proxy on 127.0.0.1 that injects S3 faults (500, 503 SlowDown, stalls) in front of moto.

Faults are injected on a deterministic schedule (every ``fault_every``-th request), before the
request reaches the server, or after it (the server applied a write but the client sees an error),
so retries of reads and writes, idempotency and atomicity are all exercised.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
              b"<Message>Please reduce your request rate.</Message></Error>")
_INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
             b"<Message>We encountered an internal error. Please try again.</Message></Error>")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class FaultSchedule:
    """Which request gets which fault; counts what was injected."""

    def __init__(self, fault_every: int, stall_every: int = 0, stall_s: float = 0.0) -> None:
        self.fault_every = fault_every
        self.stall_every = stall_every
        self.stall_s = stall_s
        self.requests = 0
        self.injected: Counter = Counter()
        self._lock = threading.Lock()

    def next_fault(self) -> str | None:
        with self._lock:
            self.requests += 1
            n = self.requests
        if self.stall_every and n % self.stall_every == 0:
            fault = "stall"
        elif self.fault_every and n % self.fault_every == 0:
            fault = ("503_before", "500_before", "500_after")[(n // self.fault_every) % 3]
        else:
            return None
        with self._lock:
            self.injected[fault] += 1
        return fault


def _handler(upstream: str, schedule: FaultSchedule) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            return

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            fault = schedule.next_fault()
            if fault == "stall":
                time.sleep(schedule.stall_s)
                self._error(503, _SLOW_DOWN)
                return
            if fault in ("503_before", "500_before"):
                self._error(503 if fault == "503_before" else 500,
                            _SLOW_DOWN if fault == "503_before" else _INTERNAL)
                return
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            connection.close()
            if fault == "500_after":  # the server did the work; the client must retry safely
                self._error(500, _INTERNAL)
                return
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_HEADERS and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _error(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    return Handler


@contextlib.contextmanager
def faulty_proxy(upstream: str, schedule: FaultSchedule) -> Iterator[str]:
    """Serve the proxy on a free 127.0.0.1 port; yields its endpoint URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream, schedule))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
