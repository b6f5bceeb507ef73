"""robots.txt, fetched once per scheme+host+port and run, with Google's rules for failures.

A robots.txt that answers 4xx (other than 429) means "no rules": everything is allowed. A 5xx,
429, timeout or network error after retries means the site is unreachable: nothing on that host
is fetched in this run, and its URLs are rejected with what robots.txt's fetch found
(``http_error``, ``timeout``, ``network_error``), never ``robots_disallowed``: no rule forbade
them. Bodies past 500 KiB are cut there, as Google does.
"""

from __future__ import annotations

import io
import logging
import threading
from email.message import Message
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from audiomill.crawl.fetcher import FetchFailed, Fetcher, URLCheck
from audiomill.crawl.urls import shown_url
from audiomill.schema import RejectReason

logger = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 500 * 1024


class _Rules:
    """What one robots.txt decided: a parser, or a reason to refuse the whole host."""

    def __init__(self, parser: RobotFileParser | None, refused: str | None = None,
                 reason: RejectReason = RejectReason.NETWORK_ERROR) -> None:
        self.parser = parser
        self.refused = refused
        self.reason = reason  # why the host is refused: what fetching robots.txt ran into


class RobotsCache:
    """``check(url)`` raises FetchFailed(robots_disallowed) when robots.txt forbids ``url``."""

    def __init__(self, fetcher: Fetcher, check_url: URLCheck, user_agent: str) -> None:
        self.fetcher = fetcher
        self.check_url = check_url
        self.user_agent = user_agent
        self.fetches = 0
        self._rules: dict[str, _Rules] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def check(self, url: str) -> None:
        rules = self._rules_for(url)
        if rules.refused is not None:
            raise FetchFailed(rules.reason, f"host skipped for this run: {rules.refused}: {shown_url(url)}")
        if rules.parser is not None and not rules.parser.can_fetch(self.user_agent, url):
            raise FetchFailed(RejectReason.ROBOTS_DISALLOWED, f"robots.txt disallows {shown_url(url)}")

    def _rules_for(self, url: str) -> _Rules:
        parts = urlsplit(url)
        origin = f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port or ''}"
        with self._lock:
            host_lock = self._locks.setdefault(origin, threading.Lock())
        with host_lock:  # one fetch per origin, even when many workers ask at once
            if origin not in self._rules:
                self._rules[origin] = self._fetch(url)
            return self._rules[origin]

    def _fetch(self, url: str) -> _Rules:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        netloc = f"[{netloc}]" if ":" in netloc else netloc
        robots_url = f"{parts.scheme}://{netloc}{f':{parts.port}' if parts.port else ''}/robots.txt"
        body = io.BytesIO()
        self.fetches += 1
        try:
            self.fetcher.fetch(robots_url, body, self.check_url, _any_headers)
        except FetchFailed as failure:
            if failure.reason is RejectReason.TOO_LARGE:
                logger.info("robots.txt of %s is over %d bytes; using the start", netloc, ROBOTS_MAX_BYTES)
            elif failure.status is not None and 400 <= failure.status < 500 and failure.status != 429:
                return _Rules(None)
            else:
                logger.warning("robots.txt unavailable, skipping host %s this run: %s",
                               shown_url(robots_url), failure.detail)
                return _Rules(None, f"robots.txt unavailable ({failure.detail})"[:300], failure.reason)
        parser = RobotFileParser()
        parser.parse(body.getvalue().decode("utf-8", "replace").splitlines())
        return _Rules(parser)


def _any_headers(url: str, headers: Message) -> int:
    """robots.txt is read whatever its content type (servers often get it wrong)."""
    return ROBOTS_MAX_BYTES
