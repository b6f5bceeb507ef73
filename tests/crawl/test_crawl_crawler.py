"""A whole crawl into raw storage (no clean job): every URL's outcome and reason, licenses,
secrets kept out of every file and log line, and a rerun that fetches nothing twice."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from audiomill.testing.crawl_site import EXPECTED, HEADER_LICENSE, LISTED, PAGE_LICENSE, SECRET, fast_config

from audiomill.crawl.crawler import Crawler
from audiomill.crawl.urls import CrawlEntry


def _crawl(site, raw: Path | str, entries: list[CrawlEntry] | None = None) -> tuple[Crawler, list[dict]]:
    crawler = Crawler(fast_config(), str(raw))
    entries = entries or [CrawlEntry(site.url(p), {"source": "test-site"}) for p in LISTED]
    return crawler, crawler.run(entries)


def _outcomes(site, rows: list[dict]) -> dict[str, str]:
    prefix = site.url("")
    return {row["source_url"].removeprefix(prefix): row.get("reject_reason") or "kept" for row in rows}


def test_every_url_gets_its_outcome_and_reason(site, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    crawler, rows = _crawl(site, tmp_path / "raw")
    expected = {p.split("?")[0]: v for p, v in EXPECTED.items() if v is not None}
    assert _outcomes(site, rows) == expected
    order = [row["source_url"].removeprefix(site.url("")) for row in rows]
    assert order[order.index("/audio/listed-1.wav") - 1] == "/audio/octet.wav"  # links replace their page
    for row in rows:
        if "reject_reason" in row:
            assert row["reject_stage"] == "crawl" and row["reject_detail"] and "path" not in row
        else:
            assert Path(row["path"]).is_file() and Path(row["path"]).parent == tmp_path / "raw"
    stats = crawler.stats
    assert stats.fetched == list(expected.values()).count("kept") and stats.pages == 1
    assert stats.failed == len(expected) - stats.fetched and stats.robots_fetches == 1
    assert not site.hits("/private/secret.wav") and not site.hits("/private/hidden.wav")
    assert not site.hits("/about.html")  # not an audio link
    _assert_no_secret(tmp_path, rows, caplog.text)


def test_licenses_come_from_list_then_headers_then_page(site, tmp_path):
    entries = [CrawlEntry(site.url("/audio/one.wav"), {"license": "CC0-1.0"}),
               CrawlEntry(site.url("/audio/two.flac")),
               CrawlEntry(site.url("/audio/listing.html"), {"source": "podcast"})]
    _, rows = _crawl(site, tmp_path / "raw", entries)
    by_url = {row["source_url"].rsplit("/", 1)[-1]: row for row in rows}
    assert by_url["one.wav"]["license"] == "CC0-1.0" and by_url["one.wav"]["license_source"] == "list"
    assert by_url["two.flac"]["license"] == HEADER_LICENSE
    assert by_url["two.flac"]["license_source"] == "http_header"
    for name in ("listed-1.wav", "listed-2.flac"):
        assert by_url[name]["license"] == PAGE_LICENSE and by_url[name]["license_source"] == "page_meta"
        assert by_url[name]["page_url"] == site.url("/audio/listing.html")
        assert by_url[name]["source"] == "podcast"  # list metadata of the page reaches its links


def test_rerun_fetches_nothing_already_stored(site, tmp_path):
    _, first = _crawl(site, tmp_path / "raw")
    fetched = [p.split("?")[0] for p, v in EXPECTED.items() if v == "kept"]
    hits_before = {p: len(site.hits(p)) for p in fetched}
    raw_files = sorted(p.name for p in (tmp_path / "raw").iterdir())
    crawler, second = _crawl(site, tmp_path / "raw")
    assert {p: len(site.hits(p)) for p in fetched} == hits_before
    assert second == first
    assert crawler.stats.cached == len(fetched) and crawler.stats.fetched == 0
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == raw_files
    assert len(site.hits("/broken.wav")) == 6  # failures are tried again on a rerun


def test_duplicate_urls_are_fetched_once(site, tmp_path):
    url = site.url("/audio/one.wav")
    _, rows = _crawl(site, tmp_path / "raw", [CrawlEntry(url), CrawlEntry(url)])
    assert len(rows) == 2 and rows[0]["path"] == rows[1]["path"]  # ingest rejects the second
    assert len(site.hits("/audio/one.wav")) == 1


def test_stored_record_holds_no_secret_and_names_the_file(site, tmp_path):
    _, rows = _crawl(site, tmp_path / "raw", [CrawlEntry(site.url(f"/signed.wav?token={SECRET}"))])
    record_path = Path(rows[0]["path"]).with_suffix(".json")
    record = json.loads(record_path.read_text())
    assert record["source_url"] == site.url("/signed.wav") and record["path"] == rows[0]["path"]
    assert record["size_bytes"] == Path(rows[0]["path"]).stat().st_size
    assert site.hits("/signed.wav")[0].query == f"token={SECRET}"  # the server did get the token
    _assert_no_secret(tmp_path, rows, "")


def _assert_no_secret(root: Path, rows: list[dict], log_text: str) -> None:
    assert SECRET not in json.dumps(rows) and SECRET not in log_text
    for path in root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_raw_storage_on_s3_and_rerun_from_it(site):
    from audiomill import storage
    from audiomill.testing.s3 import create_bucket, moto_s3_server

    with moto_s3_server():
        raw = storage.join(create_bucket("raw-audio"), "crawl-01")
        entries = [CrawlEntry(site.url("/audio/one.wav")), CrawlEntry(site.url(f"/signed.wav?token={SECRET}"))]
        _, rows = _crawl(site, raw, entries)
        assert all(row["path"].startswith("s3://raw-audio/crawl-01/") for row in rows)
        stored = {info.uri: storage.read_bytes(info.uri) for info in storage.list_files(raw)}
        assert len(stored) == 4 and not any(SECRET.encode() in data for data in stored.values())
        crawler, again = _crawl(site, raw, entries)
        assert again == rows and crawler.stats.cached == 2
        assert len(site.hits("/audio/one.wav")) == len(site.hits("/signed.wav")) == 1
