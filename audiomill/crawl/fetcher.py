"""One polite HTTP GET: per-host rate limit and concurrency, redirects re-checked hop by hop,
size and time limits while streaming, retries with exponential backoff and jitter.

Failures are ``FetchFailed`` with a reject reason, never bare exceptions: the crawler turns them
into reject rows. Messages carry redacted URLs only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import BinaryIO
from urllib.parse import quote, unquote, urljoin, urlsplit

from audiomill import storage
from audiomill.config import CrawlConfig
from audiomill.crawl.urls import host_key, shown_url
from audiomill.schema import RejectReason

REDIRECT_STATUSES = {301, 302, 303, 307, 308}
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
_CHUNK_BYTES = 64 * 1024


class FetchFailed(Exception):
    """A URL could not be fetched; ``reason`` is the reject code, ``detail`` is safe to record."""

    def __init__(self, reason: RejectReason, detail: str, retryable: bool = False,
                 retry_after_s: float | None = None, status: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.status = status  # the HTTP status of an http_error


@dataclass(frozen=True)
class Fetched:
    """A completed download: where it ended up after redirects and what it was."""

    final_url: str
    status: int
    headers: Message
    size_bytes: int
    sha256: str
    attempts: int


class HostLimiter:
    """Per host: at most ``concurrency`` requests in flight, and each request starts at least
    ``1/rate`` s after the previous one started and after it was actually sent (a slow connect
    does not bunch up the requests behind it)."""

    def __init__(self, rate: float, concurrency: int) -> None:
        self.interval_s = 1.0 / rate
        self.concurrency = concurrency
        self._lock = threading.Lock()
        self._next_start: dict[str, float] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    @contextlib.contextmanager
    def slot(self, host: str, stopping: threading.Event | None = None) -> Iterator[Callable[[], None]]:
        """Wait for a turn; yields ``mark_sent``, to call once the request has been sent."""
        stopping = stopping or threading.Event()
        with self._lock:
            semaphore = self._slots.setdefault(host, threading.BoundedSemaphore(self.concurrency))
        with semaphore:
            while True:
                with self._lock:
                    now = time.monotonic()
                    ready_s = self._next_start.get(host, now)
                    if now >= ready_s:
                        self._next_start[host] = now + self.interval_s
                        break
                if stopping.wait(ready_s - now):
                    raise FetchFailed(RejectReason.NETWORK_ERROR, "crawl interrupted")
            yield lambda: self._mark_sent(host)

    def _mark_sent(self, host: str) -> None:
        with self._lock:
            self._next_start[host] = max(self._next_start[host], time.monotonic() + self.interval_s)


def backoff_delays(cfg: CrawlConfig, url: str) -> Iterator[float]:
    """Waits (seconds) before retry 1, 2, ...: ``backoff_s * 2**i`` capped at ``backoff_max_s``,
    scaled by ``1 + uniform(-jitter, jitter)``; the same seed and URL give the same waits."""
    rng = random.Random(f"{cfg.seed}:{url}") if cfg.seed is not None else random.Random()
    attempt = 0
    while True:
        base = min(cfg.backoff_max_s, cfg.backoff_s * 2.0**attempt)
        yield base * (1.0 + rng.uniform(-cfg.backoff_jitter, cfg.backoff_jitter))
        attempt += 1


URLCheck = Callable[[str], None]
"""Raises FetchFailed when a URL (the first or a redirect hop) may not be requested."""
HeaderCheck = Callable[[str, Message], int]
"""Called with (final URL, headers) before the body is read: returns the most bytes the body may
have, or raises FetchFailed when the response is not wanted."""


class Fetcher:
    """GETs URLs into binary sinks; thread-safe, one instance per crawl."""

    def __init__(self, cfg: CrawlConfig, stopping: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.limiter = HostLimiter(cfg.per_host_rate, cfg.per_host_concurrency)
        self.stopping = stopping or threading.Event()

    def fetch(self, url: str, sink: BinaryIO, check_url: URLCheck, check_headers: HeaderCheck) -> Fetched:
        """Download ``url`` into ``sink`` (rewound on each retry); raises FetchFailed."""
        delays = backoff_delays(self.cfg, url)
        for attempt in range(1, self.cfg.retries + 2):
            sink.seek(0)
            sink.truncate()
            try:
                return self._attempt(url, sink, check_url, check_headers, attempt)
            except FetchFailed as failure:
                if not failure.retryable or attempt > self.cfg.retries or self.stopping.is_set():
                    if attempt > 1:
                        failure.detail = f"{failure.detail} (after {attempt} tries)"
                    raise
                wait_s = next(delays)
                if failure.retry_after_s is not None:
                    wait_s = max(wait_s, min(failure.retry_after_s, self.cfg.backoff_max_s))
                self.stopping.wait(wait_s)
        raise AssertionError("unreachable")

    def _attempt(self, url: str, sink: BinaryIO, check_url: URLCheck, check_headers: HeaderCheck,
                 attempt: int) -> Fetched:
        current = url
        for _ in range(self.cfg.max_redirects + 1):
            check_url(current)
            with self.limiter.slot(host_key(current), self.stopping) as mark_sent:
                connection, response = self._request(current, mark_sent)
                try:
                    location = response.getheader("Location")
                    if response.status in REDIRECT_STATUSES and location:
                        current = urljoin(current, location.strip())
                        continue
                    _raise_for_status(response, current)
                    max_bytes = check_headers(current, response.msg)
                    size, digest = self._read_body(response, sink, max_bytes, current)
                    return Fetched(current, response.status, response.msg, size, digest, attempt)
                finally:
                    response.close()
                    connection.close()
        raise FetchFailed(RejectReason.HTTP_ERROR,
                          f"more than {self.cfg.max_redirects} redirects from {shown_url(url)}")

    def _request(self, url: str, mark_sent: Callable[[], None]
                 ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        parts = urlsplit(url)
        kind = http.client.HTTPSConnection if parts.scheme.lower() == "https" else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=self.cfg.timeout_s)
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        target += f"?{parts.query}" if parts.query else ""
        headers = {"User-Agent": self.cfg.user_agent, "Accept": "*/*",
                   "Accept-Encoding": "identity", "Connection": "close"}
        if parts.username is not None:  # credentials in the URL go to that host only, never logged
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        try:
            connection.request("GET", target, headers=headers)
            mark_sent()
            return connection, connection.getresponse()
        except BaseException as err:
            connection.close()
            raise _as_failure(err, url) from None

    def _read_body(self, response: http.client.HTTPResponse, sink: BinaryIO, max_bytes: int,
                   url: str) -> tuple[int, str]:
        """Stream the body into ``sink``; never reads more than ``max_bytes + 1`` bytes."""
        declared = (response.getheader("Content-Length") or "").strip()
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchFailed(RejectReason.TOO_LARGE,
                              f"Content-Length {declared} > limit {max_bytes} bytes: {shown_url(url)}")
        deadline = time.monotonic() + self.cfg.max_fetch_s
        digest = hashlib.sha256()
        total = 0
        while True:
            try:
                chunk = response.read(min(_CHUNK_BYTES, max_bytes + 1 - total))
            except BaseException as err:
                raise _as_failure(err, url) from None
            if not chunk:
                return total, digest.hexdigest()
            total += len(chunk)
            if total > max_bytes:
                raise FetchFailed(RejectReason.TOO_LARGE,
                                  f"body longer than limit {max_bytes} bytes: {shown_url(url)}")
            digest.update(chunk)
            sink.write(chunk)
            if time.monotonic() > deadline:
                raise FetchFailed(RejectReason.TIMEOUT,
                                  f"download took over {self.cfg.max_fetch_s:g} s: {shown_url(url)}")
            if self.stopping.is_set():
                raise FetchFailed(RejectReason.NETWORK_ERROR, "crawl interrupted")


def _raise_for_status(response: http.client.HTTPResponse, url: str) -> None:
    if 200 <= response.status < 300:
        return
    retry_after = (response.getheader("Retry-After") or "").strip()
    raise FetchFailed(RejectReason.HTTP_ERROR, f"HTTP {response.status}: {shown_url(url)}",
                      retryable=response.status in RETRY_STATUSES,
                      retry_after_s=float(retry_after) if retry_after.isdigit() else None,
                      status=response.status)


def _as_failure(err: BaseException, url: str) -> BaseException:
    """Map a transport exception to FetchFailed; anything else (e.g. KeyboardInterrupt) is kept."""
    if isinstance(err, FetchFailed):
        return err
    if isinstance(err, TimeoutError):
        return FetchFailed(RejectReason.TIMEOUT, f"no response within timeout: {shown_url(url)}",
                           retryable=True)
    if isinstance(err, ssl.SSLCertVerificationError):
        return FetchFailed(RejectReason.NETWORK_ERROR, f"TLS certificate rejected: {shown_url(url)}")
    # Only socket errors' own text is kept: other messages may quote the request path and query.
    said = f" {storage.redact(str(err))[:120]}" if isinstance(err, OSError) else ""
    message = f"{type(err).__name__}{said}: {shown_url(url)}"
    if isinstance(err, (OSError, http.client.HTTPException)) and not isinstance(err, http.client.InvalidURL):
        return FetchFailed(RejectReason.NETWORK_ERROR, message, retryable=True)
    if isinstance(err, ValueError):
        return FetchFailed(RejectReason.NETWORK_ERROR, message)
    return err
