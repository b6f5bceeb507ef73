"""robots.txt: rules obeyed (also on redirect hops), fetched once per host, and Google's rules
when robots.txt itself fails (4xx: allow all; 5xx or timeout: skip the host for the run)."""

from __future__ import annotations

import socket

import pytest
from audiomill.testing.crawl_site import fast_config

from audiomill.crawl.crawler import Crawler
from audiomill.crawl.fetcher import FetchFailed
from audiomill.crawl.urls import CrawlEntry
from audiomill.schema import RejectReason
from audiomill.testing import http_server as hs


def _verdict(crawler: Crawler, url: str) -> str:
    try:
        crawler.check_url(url)
    except FetchFailed as failure:
        return failure.reason.value
    return "allowed"


def test_disallowed_paths_are_refused_and_robots_is_fetched_once(site, tmp_path):
    crawler = Crawler(fast_config(), str(tmp_path / "raw"))
    verdicts = [_verdict(crawler, site.url(p)) for p in ("/private/secret.wav", "/audio/one.wav",
                                                         "/private/x/y.wav", "/privately.wav")]
    assert verdicts == ["robots_disallowed", "allowed", "robots_disallowed", "allowed"]
    assert len(site.hits("/robots.txt")) == 1
    assert site.hits("/robots.txt")[0].headers["User-Agent"].startswith("audiomill/")


def test_redirect_into_a_disallowed_path_is_never_requested(site, tmp_path):
    crawler = Crawler(fast_config(), str(tmp_path / "raw"))
    rows = crawler.run([CrawlEntry(site.url("/redirect-private"))])
    assert rows[0]["reject_reason"] == "robots_disallowed"
    assert len(site.hits("/redirect-private")) == 1
    assert not site.hits("/private/secret.wav")


def test_robots_rules_for_our_user_agent_apply():
    rules = b"User-agent: audiomill\nDisallow: /\n\nUser-agent: *\nAllow: /\n"
    with hs.HttpTestServer({"/robots.txt": hs.static(rules, "text/plain")}) as server:
        crawler = Crawler(fast_config(), "/nonexistent-raw")
        assert _verdict(crawler, server.url("/a.wav")) == "robots_disallowed"
        polite_other = Crawler(fast_config(user_agent="otherbot/1.0"), "/nonexistent-raw")
        assert _verdict(polite_other, server.url("/a.wav")) == "allowed"


@pytest.mark.parametrize(("robots", "verdict", "robots_tries"), [
    (hs.status(404), "allowed", 1),
    (hs.status(403), "allowed", 1),
    (hs.status(503), "http_error", 2),  # the host is skipped, reporting what was found
    (hs.status(429), "http_error", 2),
    (hs.slow(30.0, hs.static(b"", "text/plain")), "timeout", 2),
])
def test_robots_failures_follow_googles_rules(robots, verdict, robots_tries):
    with hs.HttpTestServer({"/robots.txt": robots}) as server:
        crawler = Crawler(fast_config(retries=1, timeout_s=0.5), "/nonexistent-raw")
        assert _verdict(crawler, server.url("/a.wav")) == verdict
        assert _verdict(crawler, server.url("/b.wav")) == verdict  # decided once per host and run
        assert len(server.hits("/robots.txt")) == robots_tries


def test_robots_can_be_switched_off(site, tmp_path):
    crawler = Crawler(fast_config(respect_robots=False), str(tmp_path / "raw"))
    assert _verdict(crawler, site.url("/private/secret.wav")) == "allowed"
    assert not site.hits("/robots.txt")


def test_off_list_hosts_are_refused_before_any_request(site, tmp_path):
    crawler = Crawler(fast_config(allowed_domains=["example.org"]), str(tmp_path / "raw"))
    assert _verdict(crawler, site.url("/audio/one.wav")) == RejectReason.NOT_ALLOWED_DOMAIN.value
    assert not site.requests


def test_a_refused_connection_is_a_network_error_not_a_robots_verdict():
    """Nothing listens on the port: robots.txt cannot be fetched, and neither can the file."""
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a.wav"
    crawler = Crawler(fast_config(retries=1, timeout_s=0.5), "/nonexistent-raw")
    try:
        crawler.check_url(url)
    except FetchFailed as failure:
        assert failure.reason is RejectReason.NETWORK_ERROR
        assert "robots.txt unavailable" in failure.detail and "refused" in failure.detail.lower()
    else:
        pytest.fail("an unreachable host must not be fetched")
    (row,) = crawler.run([CrawlEntry(url)])
    assert row["reject_reason"] == "network_error"
