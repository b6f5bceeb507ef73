"""Fetch a URL list into raw storage and describe the result as manifest rows for the clean job.

Every entry becomes rows in list order: a fetched file (``path`` plus metadata), a reject row
(``uri`` plus ``reject_stage="crawl"``, reason and detail, which ingest keeps as a rejected
source), or, for a listing page, one row per audio link found on it. A fetched file is stored as
``<sha1(url)[:16]><ext>`` with a ``<sha1(url)[:16]>.json`` record written after it; a rerun finds
the record and does not fetch that URL again. Rows and records hold redacted URLs only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from email.message import Message
from typing import Any

from audiomill import schema, storage
from audiomill.config import CrawlConfig
from audiomill.crawl import urls
from audiomill.crawl.fetcher import Fetcher, FetchFailed
from audiomill.crawl.listing import decode_page, header_license, parse_listing
from audiomill.crawl.robots import RobotsCache
from audiomill.schema import RejectReason

logger = logging.getLogger(__name__)

Position = tuple[int, ...]  # (entry,) or (entry, link): sorts into list order, links after their page


@dataclass
class CrawlStats:
    """Counts of one crawl run, per distinct URL."""

    urls: int = 0
    fetched: int = 0
    cached: int = 0
    failed: int = 0
    pages: int = 0
    bytes_fetched: int = 0
    robots_fetches: int = 0
    failed_by_reason: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"urls": self.urls, "fetched": self.fetched, "cached": self.cached, "failed": self.failed,
                "pages": self.pages, "bytes_fetched": self.bytes_fetched,
                "robots_fetches": self.robots_fetches,
                "failed_by_reason": dict(sorted(self.failed_by_reason.items()))}


class CrawlProgress:
    """Receives crawl events on the calling thread; the CLI draws them."""

    def url_queued(self, stats: CrawlStats) -> None: ...

    def url_done(self, stats: CrawlStats) -> None: ...


@dataclass(frozen=True)
class _Job:
    url: str
    may_be_page: bool


class Crawler:
    """One crawl: ``run(entries)`` returns manifest rows; see the module docstring."""

    def __init__(self, cfg: CrawlConfig, raw_root: str, progress: CrawlProgress | None = None,
                 stopping: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.raw_root = raw_root
        self.progress = progress or CrawlProgress()
        self.stopping = stopping or threading.Event()
        self.fetcher = Fetcher(cfg, self.stopping)
        self.robots = RobotsCache(self.fetcher, self.check_domain, cfg.user_agent)
        self.stats = CrawlStats()
        self._stored = _stored_names(raw_root)
        self._tmp_dir = ""

    def check_domain(self, url: str) -> None:
        problem = urls.url_problem(url)
        if problem:
            raise FetchFailed(RejectReason.NOT_ALLOWED_DOMAIN, problem)
        if not urls.domain_allowed(url, self.cfg):
            raise FetchFailed(RejectReason.NOT_ALLOWED_DOMAIN,
                              f"host not in crawl.allowed_domains: {urls.shown_url(url)}")

    def check_url(self, url: str) -> None:
        """Allow-list, then robots.txt; run on the first URL and on every redirect hop."""
        self.check_domain(url)
        if self.cfg.respect_robots:
            self.robots.check(url)

    def run(self, entries: list[urls.CrawlEntry]) -> list[dict[str, Any]]:
        placed: dict[Position, urls.CrawlEntry] = {(i,): e for i, e in enumerate(entries)}
        first_place: dict[str, Position] = {}
        for position, entry in placed.items():
            first_place.setdefault(entry.url, position)
        new_entries = deque(placed.values())
        records: dict[str, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory(prefix="audiomill-crawl-") as self._tmp_dir:
            for job, record in self._fetch_all(new_entries):
                records[job.url] = record
                if record["kind"] == "listing":  # links go right after the page's first place
                    page_place = first_place[job.url]
                    for index, link in enumerate(self._link_entries(placed[page_place], record)):
                        placed[(*page_place, index)] = link
                        new_entries.append(link)
        self.stats.robots_fetches = self.robots.fetches
        return [row for position in sorted(placed)
                for row in _rows(placed[position], records.get(placed[position].url),
                                 expanded=first_place.get(placed[position].url) == position)]

    def _fetch_all(self, new_entries: deque[urls.CrawlEntry]) -> Iterator[tuple[_Job, dict[str, Any]]]:
        """Fetch each distinct URL of ``new_entries`` once (the caller appends links as pages
        yield them; a URL first listed as a link is never read as a page), fairly across hosts:
        at most ``per_host_concurrency`` jobs of one host at a time are handed to workers, so no
        worker sits blocked behind a busy host."""
        queues: dict[str, deque[_Job]] = {}
        known: set[str] = set()
        in_flight: dict[Future, tuple[str, _Job]] = {}
        per_host: Counter = Counter()
        with ThreadPoolExecutor(self.cfg.concurrency, thread_name_prefix="crawl") as pool:
            try:
                while True:
                    while new_entries:
                        entry = new_entries.popleft()
                        if entry.error is None and entry.url not in known:
                            known.add(entry.url)
                            job = _Job(entry.url, may_be_page=entry.page_url is None)
                            queues.setdefault(urls.host_key(entry.url), deque()).append(job)
                            self.stats.urls += 1
                            self.progress.url_queued(self.stats)
                    for host in _round_robin(queues, per_host, self.cfg.per_host_concurrency,
                                             self.cfg.concurrency - len(in_flight)):
                        job = queues[host].popleft()
                        per_host[host] += 1
                        in_flight[pool.submit(self._fetch_one, job)] = (host, job)
                    if not in_flight:
                        return
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in done:
                        host, job = in_flight.pop(future)
                        per_host[host] -= 1
                        record = future.result()
                        self._count(record)
                        yield job, record
            except BaseException:
                self.stopping.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    def _fetch_one(self, job: _Job) -> dict[str, Any]:
        key = urls.url_key(job.url)
        cached = self._cached_record(job.url, key)
        if cached is not None:
            return cached
        try:
            return self._download(job, key)
        except FetchFailed as failure:
            logger.info("crawl reject %s: %s", failure.reason.value, failure.detail)
            return {"kind": "failed", "reason": failure.reason.value, "detail": failure.detail[:300]}

    def _download(self, job: _Job, key: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def check_headers(final_url: str, headers: Message) -> int:
            content_type = headers.get("Content-Type")
            seen.update(content_type=urls.media_type(content_type), headers=headers)
            if urls.is_audio_response(content_type, final_url, self.cfg):
                seen["kind"] = "audio"
                return self.cfg.max_bytes
            if job.may_be_page and self.cfg.follow_links and urls.is_html(content_type):
                seen["kind"] = "listing"
                return self.cfg.max_page_bytes
            raise FetchFailed(RejectReason.BAD_CONTENT_TYPE, f"content type "
                              f"{urls.media_type(content_type) or '(none)'} is not accepted: "
                              f"{urls.shown_url(final_url)}")

        with tempfile.NamedTemporaryFile(dir=self._tmp_dir, prefix=key) as sink:
            fetched = self.fetcher.fetch(job.url, sink, self.check_url, check_headers)
            sink.flush()
            sink.seek(0)
            if seen["kind"] == "listing":
                return self._listing_record(job, sink.read(), seen["headers"], fetched.final_url)
            if urls.looks_like_html(sink.read(512)):
                raise FetchFailed(RejectReason.BAD_CONTENT_TYPE, f"body is an HTML page served as "
                                  f"{seen['content_type']}: {urls.shown_url(fetched.final_url)}")
            extension = urls.raw_extension([fetched.final_url, job.url], seen["content_type"], self.cfg)
            record = {"kind": "audio", "url_sha1": hashlib.sha1(job.url.encode()).hexdigest(),
                      "source_url": urls.shown_url(job.url), "final_url": urls.shown_url(fetched.final_url),
                      "path": storage.join(self.raw_root, key + extension),
                      "content_type": seen["content_type"], "size_bytes": fetched.size_bytes,
                      "sha256": fetched.sha256, "license": _clean_license(header_license(fetched.headers)),
                      "attempts": fetched.attempts, "fetched_unix": round(time.time(), 3)}
            storage.write_file(record["path"], sink.name)
        storage.write_text(storage.join(self.raw_root, key + ".json"), json.dumps(record, sort_keys=True))
        logger.info("fetched %s (%d bytes)", record["source_url"], record["size_bytes"])
        return record

    def _listing_record(self, job: _Job, body: bytes, headers: Message, final_url: str) -> dict[str, Any]:
        page = parse_listing(decode_page(body, headers), final_url, self.cfg)
        if not page.links:
            raise FetchFailed(RejectReason.NOT_AUDIO,
                              f"listing page has no audio links: {urls.shown_url(final_url)}")
        license_, source = page.license, "page_meta"
        if license_ is None:
            license_, source = header_license(headers), "page_http_header"
        return {"kind": "listing", "links": page.links, "license": _clean_license(license_),
                "license_source": source if license_ else None}

    def _cached_record(self, url: str, key: str) -> dict[str, Any] | None:
        if key + ".json" not in self._stored:
            return None
        try:
            record = json.loads(storage.read_text(storage.join(self.raw_root, key + ".json")))
        except (FileNotFoundError, json.JSONDecodeError) as err:
            logger.warning("refetching %s: unreadable fetch record (%s)", urls.shown_url(url), err)
            return None
        stored_name = str(record.get("path", "")).rsplit("/", 1)[-1]
        same_url = record.get("url_sha1") == hashlib.sha1(url.encode()).hexdigest()
        if not same_url or stored_name not in self._stored:
            return None
        return {**record, "cached": True}

    def _link_entries(self, page: urls.CrawlEntry, record: dict[str, Any]) -> list[urls.CrawlEntry]:
        page_license = (record["license"], record["license_source"]) if record["license"] else None
        return [replace(page, url=link, page_url=page.url, page_license=page_license)
                for link in record["links"]]

    def _count(self, record: dict[str, Any]) -> None:
        if record.get("cached"):
            self.stats.cached += 1
        elif record["kind"] == "audio":
            self.stats.fetched += 1
            self.stats.bytes_fetched += record["size_bytes"]
        elif record["kind"] == "listing":
            self.stats.pages += 1
        else:
            self.stats.failed += 1
            self.stats.failed_by_reason[record["reason"]] += 1
        self.progress.url_done(self.stats)


def _round_robin(queues: dict[str, deque], per_host: Counter, host_limit: int, free: int) -> Iterator[str]:
    """Hosts to hand the next jobs from: one job per host per turn while workers are free."""
    while free > 0:
        ready = [h for h, q in queues.items() if q and per_host[h] < host_limit]
        if not ready:
            return
        for host in ready[:free]:
            yield host
            free -= 1


def _stored_names(raw_root: str) -> set[str]:
    """Names of the files directly under the raw root (empty when it does not exist yet)."""
    try:
        return {os.path.basename(info.uri) for info in storage.list_files(raw_root, recursive=False)}
    except FileNotFoundError:
        return set()


def _clean_license(value: str | None) -> str | None:
    """A license as recorded: stripped, redacted if it is a URL, at most 300 characters."""
    return storage.redact(value.strip())[:300] if value and value.strip() else None


def _rows(entry: urls.CrawlEntry, record: dict[str, Any] | None, expanded: bool) -> list[dict[str, Any]]:
    """Manifest rows of one placed entry: none for a page whose links were placed after it
    (``expanded``); a page listed again is a duplicate, as ingest calls a repeated file."""
    if record is not None and record["kind"] == "listing":
        if expanded:
            return []
        record = {"reason": RejectReason.DUPLICATE_INPUT.value, "detail": "listing page listed twice",
                  "kind": "failed"}
    metadata = dict(entry.metadata)
    if entry.url:
        metadata["source_url"] = urls.shown_url(entry.url)
    if entry.page_url:
        metadata["page_url"] = urls.shown_url(entry.page_url)
    if metadata.get("license") is not None:
        metadata["license_source"] = "list"
    elif record is not None and record.get("license"):
        metadata.update(license=record["license"], license_source="http_header")
    elif entry.page_license:
        metadata.update(license=entry.page_license[0], license_source=entry.page_license[1])
    if record is not None and record["kind"] == "audio":
        return [{"path": record["path"], **metadata, "content_type": record["content_type"]}]
    reason, detail = ((RejectReason.BAD_MANIFEST_ROW.value, entry.error) if record is None
                      else (record["reason"], record["detail"]))
    return [{"uri": _reject_uri(entry), **metadata, schema.REJECT_STAGE: schema.StageName.CRAWL.value,
             schema.REJECT_REASON: reason, schema.REJECT_DETAIL: detail}]


def _reject_uri(entry: urls.CrawlEntry) -> str:
    """A rejected URL as the dataset shows it: redacted, plus its key when redaction changed it
    (two URLs that differ only in their query stay two sources)."""
    if not entry.url:
        return f"urls-file#line{entry.line}"
    shown = urls.shown_url(entry.url)
    return shown if shown == entry.url else f"{shown}#{urls.url_key(entry.url)}"
