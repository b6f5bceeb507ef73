"""The fetcher against a real server on 127.0.0.1: rate limit, concurrency, retries with backoff,
timeouts, size limits that stop reading early, redirects checked hop by hop."""

from __future__ import annotations

import io
import itertools

import pytest
from audiomill.testing.crawl_site import HUGE_BYTES, fast_config

from audiomill.crawl.fetcher import FetchFailed, Fetcher, backoff_delays
from audiomill.crawl.urls import domain_allowed
from audiomill.schema import RejectReason
from audiomill.testing import http_server as hs


def _fetch(fetcher: Fetcher, url: str, max_bytes: int = 1024 * 1024):
    def check_url(hop: str) -> None:
        if not domain_allowed(hop, fetcher.cfg):
            raise FetchFailed(RejectReason.NOT_ALLOWED_DOMAIN, "off the list")

    sink = io.BytesIO()
    return fetcher.fetch(url, sink, check_url, lambda final, headers: max_bytes), sink.getvalue()


def _failure(fetcher: Fetcher, url: str, max_bytes: int = 1024 * 1024) -> FetchFailed:
    with pytest.raises(FetchFailed) as caught:
        _fetch(fetcher, url, max_bytes)
    return caught.value


def test_requests_to_one_host_are_spaced_by_the_rate_limit():
    cfg = fast_config(per_host_rate=10.0, per_host_concurrency=4)
    fetcher = Fetcher(cfg)
    with hs.HttpTestServer({f"/{i}.wav": hs.static(b"RIFF", "audio/wav") for i in range(6)}) as server:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda i: _fetch(fetcher, server.url(f"/{i}.wav")), range(6)))
        connects = sorted(r.connected_s for r in server.requests)
    gaps = [b - a for a, b in itertools.pairwise(connects)]
    assert len(connects) == 6
    assert min(gaps) >= 0.1 - 0.01, gaps  # 1 / per_host_rate, less 10 ms of server-side scheduling


def test_per_host_concurrency_caps_requests_in_flight():
    cfg = fast_config(per_host_rate=1000.0, per_host_concurrency=2, timeout_s=2.0)
    fetcher = Fetcher(cfg)
    routes = {f"/{i}.wav": hs.slow(0.3, hs.static(b"RIFF", "audio/wav")) for i in range(6)}
    with hs.HttpTestServer(routes) as server:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda i: _fetch(fetcher, server.url(f"/{i}.wav")), range(6)))
        spans = [(r.arrived_s, r.answered_s) for r in server.requests]  # inside the client's spans
    most = max(sum(1 for a, b in spans if a <= t < b) for t, _ in spans)
    assert most == 2


def test_flaky_endpoint_is_retried_with_backoff_and_succeeds(site):
    cfg = fast_config(per_host_rate=1000.0, backoff_s=0.15, backoff_jitter=0.5)
    fetched, body = _fetch(Fetcher(cfg), site.url("/flaky.wav"))
    assert fetched.attempts == 3 and body[:4] == b"RIFF"
    hits = site.hits("/flaky.wav")
    assert [h.status for h in hits] == [503, 503, 200]
    waits = list(itertools.islice(backoff_delays(cfg, site.url("/flaky.wav")), 2))
    gaps = [b.connected_s - a.connected_s for a, b in itertools.pairwise(hits)]
    assert all(gap >= wait for gap, wait in zip(gaps, waits)), (gaps, waits)


def test_permanent_500_fails_after_all_retries_and_404_is_not_retried(site):
    fetcher = Fetcher(fast_config(retries=2))
    failure = _failure(fetcher, site.url("/broken.wav"))
    assert failure.reason is RejectReason.HTTP_ERROR and failure.status == 500
    assert "after 3 tries" in failure.detail and len(site.hits("/broken.wav")) == 3
    missing = _failure(fetcher, site.url("/missing.wav"))
    assert missing.status == 404 and len(site.hits("/missing.wav")) == 1


def test_slow_endpoint_times_out_on_every_try(site):
    failure = _failure(Fetcher(fast_config(retries=1, timeout_s=0.3)), site.url("/slow.wav"))
    assert failure.reason is RejectReason.TIMEOUT
    assert len(site.hits("/slow.wav")) == 2


@pytest.mark.parametrize("path", ["/huge.wav", "/huge-declared.wav"])
def test_too_large_bodies_stop_reading_early(site, path):
    limit = 256 * 1024
    failure = _failure(Fetcher(fast_config()), site.url(path), max_bytes=limit)
    assert failure.reason is RejectReason.TOO_LARGE
    (served,) = site.wait_done(path)
    assert served.bytes_sent < HUGE_BYTES / 4  # the client hung up; the server never sent it all
    assert served.client_gone or served.bytes_sent < HUGE_BYTES


def test_redirects_are_followed_and_each_hop_is_checked(site):
    fetcher = Fetcher(fast_config())
    fetched, _ = _fetch(fetcher, site.url("/redirect-ok"))
    assert fetched.final_url == site.url("/audio/three.wav")
    off = _failure(fetcher, site.url("/redirect-off"))
    assert off.reason is RejectReason.NOT_ALLOWED_DOMAIN


def test_redirect_loops_stop_after_max_redirects():
    with hs.HttpTestServer({"/loop": hs.redirect("/loop")}) as server:
        failure = _failure(Fetcher(fast_config(max_redirects=3)), server.url("/loop"))
        assert failure.reason is RejectReason.HTTP_ERROR and "more than 3 redirects" in failure.detail
        assert len(server.hits("/loop")) == 4


def test_user_agent_is_sent(site):
    _fetch(Fetcher(fast_config(user_agent="audiomill/test (+https://example.org/bot)")), site.url("/audio/one.wav"))
    assert site.hits("/audio/one.wav")[0].headers["User-Agent"] == "audiomill/test (+https://example.org/bot)"
