"""``audiomill crawl`` as a function: fetch a URL list into raw storage, write the crawl manifest,
then run the normal clean job on it.

The crawl manifest (``OUT/_crawl/manifest.jsonl``) lists fetched files with their URL, license and
source, and failed URLs as rows already rejected at stage ``crawl``; ingest keeps those, so they
reach ``rejects.parquet`` and the dataset's accounting like any other rejected source.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any

from audiomill import storage
from audiomill.config import CleanConfig, ConfigError
from audiomill.crawl.crawler import CrawlProgress, Crawler
from audiomill.crawl.urls import read_entries
from audiomill.jobs.clean import JobProgress, run_clean
from audiomill.manifest import Manifest

logger = logging.getLogger(__name__)

CRAWL_DIR = "_crawl"
MANIFEST_NAME = "manifest.jsonl"
REPORT_NAME = "report.json"
RAW_DIR = "_raw"


def check_crawl_config(cfg: CleanConfig, urls_file: str) -> None:
    """Fail before any request when the crawl cannot start."""
    if not cfg.output:
        raise ConfigError("output is required (--out)")
    if not cfg.crawl.allowed_domains and not cfg.crawl.allow_any_domain:
        raise ConfigError("crawl.allowed_domains is empty: list the hosts to fetch from "
                          "(--set 'crawl.allowed_domains=[example.org]') or pass --allow-any-domain")
    if not storage.exists(urls_file):
        raise FileNotFoundError(f"URL list does not exist: {storage.redact(urls_file)}")


def default_raw_root(output: str) -> str:
    return storage.join(output, RAW_DIR)


def fetch_urls(cfg: CleanConfig, urls_file: str, raw_root: str | None = None,
               progress: CrawlProgress | None = None) -> dict[str, Any]:
    """Fetch the list into raw storage; write ``OUT/_crawl/manifest.jsonl`` and ``report.json``."""
    check_crawl_config(cfg, urls_file)
    raw_root = storage.absolute(raw_root or default_raw_root(cfg.output))
    output = storage.absolute(cfg.output)
    entries = read_entries(urls_file)
    fetched_by: dict[str, Any] = {"fetch_on": cfg.crawl.fetch_on}
    if cfg.crawl.fetch_on == "ray":
        from audiomill.execution.crawl_ray import RayCrawler
        from audiomill.execution.ray_session import RaySettings, ray_session

        with ray_session(RaySettings(address=cfg.runner.address, num_cpus=cfg.runner.num_cpus)):
            crawler = RayCrawler(cfg.crawl, raw_root, progress)
            rows = crawler.run(entries)
        fetched_by["fetch_workers"] = sorted(crawler.workers)  # "<node id>/<pid>" of each fetching worker
    else:
        crawler = Crawler(cfg.crawl, raw_root, progress)
        rows = crawler.run(entries)
    manifest_uri = storage.join(output, CRAWL_DIR, MANIFEST_NAME)
    storage.write_text(manifest_uri, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    report = {"urls_file": storage.redact(urls_file), "raw": storage.redact(raw_root),
              "manifest": storage.redact(manifest_uri), "entries": len(entries), "rows": len(rows),
              **crawler.stats.as_dict(), **fetched_by}
    storage.write_text(storage.join(output, CRAWL_DIR, REPORT_NAME), json.dumps(report, indent=2))
    logger.info("crawl: %d rows, %d fetched, %d already fetched, %d failed", len(rows),
                crawler.stats.fetched, crawler.stats.cached, crawler.stats.failed)
    return report


def clean_fetched(cfg: CleanConfig, progress: JobProgress | None = None) -> Manifest:
    """Run the clean job on the crawl manifest that ``fetch_urls`` wrote to ``cfg.output``."""
    output = storage.absolute(cfg.output)
    manifest_uri = storage.join(output, CRAWL_DIR, MANIFEST_NAME)
    # our own manifest names raw files by absolute path/URI (OUT/_raw or --raw): trusted
    cfg = cfg.model_copy(update={"ingest": cfg.ingest.model_copy(update={"manifest_absolute_paths": True})})
    if storage.local_path(manifest_uri) is not None:
        return run_clean(cfg.model_copy(update={"inputs": [manifest_uri], "output": output}), progress)
    # ingest reads a manifest given as a local file; the clean job gets a local copy
    with tempfile.TemporaryDirectory(prefix="audiomill-crawl-") as tmp:
        local = os.path.join(tmp, MANIFEST_NAME)
        with open(local, "wb") as handle:
            handle.write(storage.read_bytes(manifest_uri))
        return run_clean(cfg.model_copy(update={"inputs": [local], "output": output}), progress)
