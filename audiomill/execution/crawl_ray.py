"""``crawl`` on a Ray cluster: each URL is fetched by a Ray task; per-host politeness is one actor.

The driver keeps what the threaded ``Crawler`` keeps (the URL list, placement of links, the
manifest rows) and hands each distinct URL to a Ray task instead of a thread. Every task's
``Fetcher`` asks one ``HostPolicy`` actor per crawl for a turn before each request, so
``per_host_rate`` and ``per_host_concurrency`` hold across all workers and nodes, not per
process. Fetch records are written to raw storage by the tasks exactly as the threaded crawler
writes them, so a rerun (threaded or on Ray) finds them and fetches nothing again.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, Callable

from audiomill import storage
from audiomill.config import CrawlConfig
from audiomill.crawl import urls
from audiomill.crawl.crawler import Crawler, CrawlProgress, _Job
from audiomill.crawl.fetcher import FetchFailed
from audiomill.schema import RejectReason

TASK_CPUS = 0.1
"""CPUs a fetch task reserves: fetching waits on the network, so many share a core."""
_POLL_S = 0.02


class HostPolicy:
    """Per host: at most ``concurrency`` requests in flight, starts at least ``1/rate`` s apart
    (measured from the later of grant and send). Plain Python; the crawl runs it as a Ray actor."""

    def __init__(self, rate: float, concurrency: int) -> None:
        self.interval_s = 1.0 / rate
        self.concurrency = concurrency
        self.next_start: dict[str, float] = {}
        self.in_flight: dict[str, int] = {}

    def acquire(self, host: str) -> float:
        """0.0 and a granted turn, or how many seconds to wait before asking again."""
        now = time.time()
        ready_s = self.next_start.get(host, now)
        if self.in_flight.get(host, 0) >= self.concurrency:
            return _POLL_S
        if now < ready_s:
            return ready_s - now
        self.in_flight[host] = self.in_flight.get(host, 0) + 1
        self.next_start[host] = now + self.interval_s
        return 0.0

    def sent(self, host: str) -> None:
        self.next_start[host] = max(self.next_start.get(host, 0.0), time.time() + self.interval_s)

    def release(self, host: str) -> None:
        self.in_flight[host] = max(0, self.in_flight.get(host, 0) - 1)


class RayHostLimiter:
    """``HostLimiter``'s interface (``slot``) backed by the crawl's ``HostPolicy`` actor."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    @contextlib.contextmanager
    def slot(self, host: str, stopping: Any = None) -> Iterator[Callable[[], None]]:
        import ray

        while (wait_s := ray.get(self.actor.acquire.remote(host))) > 0:
            if stopping is not None and stopping.wait(wait_s):
                raise FetchFailed(RejectReason.NETWORK_ERROR, "crawl interrupted")
            if stopping is None:
                time.sleep(wait_s)
        try:
            yield lambda: ray.get(self.actor.sent.remote(host))
        finally:
            self.actor.release.remote(host)


_WORKERS: dict[tuple[str, str], Crawler] = {}


def _worker_crawler(cfg_json: str, raw_root: str, actor: Any) -> Crawler:
    """One Crawler per worker process and crawl, its fetcher limited by the shared actor."""
    key = (cfg_json, raw_root)
    if key not in _WORKERS:
        crawler = Crawler(CrawlConfig.model_validate_json(cfg_json), raw_root)
        crawler.fetcher.limiter = RayHostLimiter(actor)
        _WORKERS[key] = crawler
    return _WORKERS[key]


def fetch_url(cfg_json: str, raw_root: str, actor: Any, url: str, may_be_page: bool) -> tuple[dict[str, Any], str]:
    """The Ray task: fetch one URL into raw storage; (fetch record, ``<node id>/<worker pid>``)."""
    import ray

    crawler = _worker_crawler(cfg_json, raw_root, actor)
    crawler._stored = _stored_for(raw_root, url)  # a reused worker must see what later runs stored
    worker = f"{ray.get_runtime_context().get_node_id()}/{os.getpid()}"
    # a download's staging dir lives only as long as the task: worker processes are not reliably
    # told when they exit, so a per-worker dir would be left behind in /tmp
    with tempfile.TemporaryDirectory(prefix="audiomill-crawl-task-") as crawler._tmp_dir:
        return crawler._fetch_one(_Job(url, may_be_page)), worker


def _stored_for(raw_root: str, url: str) -> set[str]:
    """The raw files of ``url`` that exist now (its ``.json`` record and the file it names)."""
    record = storage.join(raw_root, urls.url_key(url) + ".json")
    if not storage.exists(record):
        return set()
    try:
        path = str(json.loads(storage.read_text(record)).get("path", ""))
    except json.JSONDecodeError:
        return {record.rsplit("/", 1)[-1]}
    name = path.rsplit("/", 1)[-1]
    return {record.rsplit("/", 1)[-1]} | ({name} if name and storage.exists(storage.join(raw_root, name)) else set())


class RayCrawler(Crawler):
    """``Crawler`` whose fetches run as Ray tasks (call inside ``ray_session``)."""

    def __init__(self, cfg: CrawlConfig, raw_root: str, progress: CrawlProgress | None = None) -> None:
        super().__init__(cfg, raw_root, progress)
        self.workers: set[str] = set()  # "<node id>/<pid>" of every process that fetched

    def _fetch_all(self, new_entries: deque[urls.CrawlEntry]) -> Iterator[tuple[_Job, dict[str, Any]]]:
        import ray

        actor = ray.remote(num_cpus=0)(HostPolicy).remote(self.cfg.per_host_rate, self.cfg.per_host_concurrency)
        task = ray.remote(num_cpus=TASK_CPUS, max_retries=0)(fetch_url)
        cfg_json = self.cfg.model_dump_json()
        known: set[str] = set()
        queued: deque[_Job] = deque()
        in_flight: dict[Any, _Job] = {}
        while True:
            while new_entries:
                entry = new_entries.popleft()
                if entry.error is None and entry.url not in known:
                    known.add(entry.url)
                    queued.append(_Job(entry.url, may_be_page=entry.page_url is None))
                    self.stats.urls += 1
                    self.progress.url_queued(self.stats)
            while queued and len(in_flight) < self.cfg.concurrency:
                job = queued.popleft()
                in_flight[task.remote(cfg_json, self.raw_root, actor, job.url, job.may_be_page)] = job
            if not in_flight:
                return
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                job = in_flight.pop(ref)
                record, worker = ray.get(ref)
                self.workers.add(worker)
                self._count(record)
                yield job, record
