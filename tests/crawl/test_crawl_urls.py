"""URL lists, allow-list, content types, link and license extraction, backoff, config: no network."""

from __future__ import annotations

from email.message import Message

import pytest

from audiomill.jobs.prepare import config_fingerprint
from audiomill.config import ConfigError, CrawlConfig, load_config
from audiomill.crawl import urls
from audiomill.crawl.fetcher import backoff_delays
from audiomill.crawl.listing import header_license, parse_listing


def test_text_list_skips_comments_and_flags_bad_lines(tmp_path):
    listed = tmp_path / "urls.txt"
    listed.write_text("# a comment\n\nhttps://example.org/a.mp3\nftp://example.org/b.mp3\nnot a url\n"
                      "  http://example.org/c.wav  \n")
    entries = urls.read_entries(str(listed))
    assert [e.url for e in entries] == ["https://example.org/a.mp3", "ftp://example.org/b.mp3",
                                        "not a url", "http://example.org/c.wav"]
    assert [e.error is None for e in entries] == [True, False, False, True]
    assert "line 4" in entries[1].error and "not an http(s) URL" in entries[1].error


def test_jsonl_list_keeps_metadata_and_drops_reserved_columns(tmp_path):
    listed = tmp_path / "urls.jsonl"
    listed.write_text('{"url": "https://example.org/a.mp3", "license": "CC0", "source": "radio", '
                      '"path": "/etc/passwd", "reject_reason": "x"}\n'
                      '{"license": "CC0"}\nnot json\n[1, 2]\n'
                      '{"uri": "http://example.org/b.wav?sig=abc"}\n')
    entries = urls.read_entries(str(listed))
    assert entries[0].metadata == {"license": "CC0", "source": "radio"}
    assert "has no url/uri" in entries[1].error
    assert "not JSON" in entries[2].error and "not a JSON object" in entries[3].error
    assert entries[4].error is None and entries[4].url.endswith("?sig=abc")


def test_allow_list_matches_hosts_and_subdomains_only():
    cfg = CrawlConfig(allowed_domains=["example.org"])
    assert urls.domain_allowed("https://example.org/a", cfg)
    assert urls.domain_allowed("https://cdn.Example.org:8443/a", cfg)
    assert not urls.domain_allowed("https://badexample.org/a", cfg)
    assert not urls.domain_allowed("https://example.org.evil.net/a", cfg)


def test_any_domain_still_refuses_private_and_loopback_hosts():
    cfg = CrawlConfig(allow_any_domain=True)
    assert urls.domain_allowed("https://example.net/a", cfg)
    for url in ("http://127.0.0.1/a", "http://169.254.169.254/latest", "http://10.0.0.7/x",
                "http://localhost:8080/x", "http://[::1]/x"):
        assert not urls.domain_allowed(url, cfg), url
    assert urls.domain_allowed("http://127.0.0.1/a", CrawlConfig(allow_any_domain=True,
                                                                 allowed_domains=["127.0.0.1"]))


@pytest.mark.parametrize(("content_type", "url", "audio"), [
    ("audio/mpeg", "http://h/x", True),
    ("Audio/FLAC; charset=binary", "http://h/x", True),
    ("application/ogg", "http://h/x", True),
    ("application/octet-stream", "http://h/x.wav", True),
    ("application/octet-stream", "http://h/x.bin", False),
    (None, "http://h/x.mp3", True),
    ("text/plain", "http://h/x.wav", False),
    ("text/html", "http://h/x.mp3", False),
    ("video/mp4", "http://h/x.mp4", False),
])
def test_audio_content_types(content_type, url, audio):
    assert urls.is_audio_response(content_type, url, CrawlConfig()) is audio


def test_raw_names_are_stable_and_carry_an_audio_extension():
    cfg = CrawlConfig()
    assert urls.url_key("http://h/a.mp3?token=1") != urls.url_key("http://h/a.mp3?token=2")
    assert len(urls.url_key("http://h/a")) == 16
    assert urls.raw_extension(["http://h/final.FLAC", "http://h/x"], "audio/mpeg", cfg) == ".flac"
    assert urls.raw_extension(["http://h/stream?id=3"], "audio/mpeg", cfg) == ".mp3"
    assert urls.raw_extension(["http://h/stream"], "application/octet-stream", cfg) == ".bin"
    assert urls.raw_extension(["http://h/stream"], None, cfg) == ".audio"


def test_shown_urls_lose_credentials_and_queries():
    assert urls.shown_url("https://user:pw@h.org/a.mp3?token=S#frag") == "https://h.org/a.mp3"
    assert urls.shown_url("h.org/a.mp3?token=S") == "h.org/a.mp3"


def test_html_sniffing():
    assert urls.looks_like_html(b"\xef\xbb\xbf  <!DOCTYPE html><html>")
    assert urls.looks_like_html(b"\n<HTML><body>")
    assert not urls.looks_like_html(b"RIFF\x00\x00WAVEfmt ")
    assert not urls.looks_like_html(b"ID3\x04")


def test_listing_finds_audio_links_and_page_license():
    html = """<html><head><base href="https://h.org/media/">
    <link rel="license" href="/licenses/cc-by.html"></head><body>
    <a href="a.mp3">a</a> <a href="a.mp3#t=3">again</a> <a href="page.html">no</a>
    <a href="stream?id=4" type="audio/mpeg">typed</a> <audio src="//cdn.h.org/b"></audio>
    <video><source src="c.ogg"></video> <a href="javascript:play()">js</a>
    <a href="mailto:x@h.org">mail</a></body></html>"""
    page = parse_listing(html, "https://h.org/index.html", CrawlConfig())
    assert page.links == ["https://h.org/media/a.mp3", "https://h.org/media/stream?id=4",
                          "https://cdn.h.org/b", "https://h.org/media/c.ogg"]
    assert page.license == "https://h.org/licenses/cc-by.html"
    meta = parse_listing('<meta name="License" content="CC0-1.0"><a href="x.wav">x</a>', "http://h/", CrawlConfig())
    assert meta.license == "CC0-1.0" and meta.links == ["http://h/x.wav"]
    limited = parse_listing("".join(f'<a href="{i}.wav">' for i in range(10)), "http://h/",
                            CrawlConfig(max_links_per_page=3))
    assert limited.links == ["http://h/0.wav", "http://h/1.wav", "http://h/2.wav"]


def test_license_from_headers():
    headers = Message()
    headers["Link"] = '<https://h.org/style.css>; rel="stylesheet", <https://cc.org/by/4.0/>; rel="license"'
    assert header_license(headers) == "https://cc.org/by/4.0/"
    other = Message()
    other["X-License"] = " CC-BY-4.0 "
    assert header_license(other) == "CC-BY-4.0"
    assert header_license(Message()) is None


def test_backoff_is_exponential_capped_jittered_and_seeded():
    cfg = CrawlConfig(backoff_s=1.0, backoff_max_s=5.0, backoff_jitter=0.5, seed=3)
    first = [d for d, _ in zip(backoff_delays(cfg, "http://h/a"), range(6))]
    assert first == [d for d, _ in zip(backoff_delays(cfg, "http://h/a"), range(6))]
    assert first != [d for d, _ in zip(backoff_delays(cfg, "http://h/b"), range(6))]
    for attempt, delay in enumerate(first):
        base = min(5.0, 2.0**attempt)
        assert 0.5 * base <= delay <= 1.5 * base
    exact = CrawlConfig(backoff_s=0.1, backoff_max_s=1.0, backoff_jitter=0.0)
    assert [round(d, 6) for d, _ in zip(backoff_delays(exact, "u"), range(5))] == [0.1, 0.2, 0.4, 0.8, 1.0]


def test_crawl_config_is_validated_and_not_in_the_clean_fingerprint():
    cfg = load_config(overrides=["crawl.allowed_domains=[Example.ORG, '*.cdn.net']", "crawl.per_host_rate=0.5"])
    assert cfg.crawl.allowed_domains == ["example.org", "cdn.net"]
    assert config_fingerprint(cfg) == config_fingerprint(load_config())
    assert load_config(overrides=["crawl.allowed_domains=example.org"]).crawl.allowed_domains == ["example.org"]
    for bad in ("crawl.allowed_domains=[https://example.org]", "crawl.per_host_rate=0",
                "crawl.backoff_jitter=2", "crawl.bogus=1"):
        with pytest.raises(ConfigError, match="crawl"):
            load_config(overrides=[bad])
