"""Crawl fixtures: real speech files (espeak-ng) and a local site on 127.0.0.1 with every kind of
trouble a crawler meets: robots.txt rules, slow, flaky and broken endpoints, redirects, huge and
mislabeled bodies, a listing page with a license, a signed URL."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf

from audiomill.config import CrawlConfig
from audiomill.schema import SAMPLE_RATE
from audiomill.testing import http_server as hs
from audiomill.testing.signals import espeak, resample, silence

SECRET = "SECRET-7f3a9c"
HUGE_BYTES = 64 * 1024 * 1024
PAGE_LICENSE = "CC-BY-SA-4.0"
HEADER_LICENSE = "https://creativecommons.org/licenses/by/4.0/"


@dataclass(frozen=True)
class SpeechFiles:
    wav: bytes
    flac: bytes


@pytest.fixture(scope="session")
def speech_files() -> SpeechFiles:
    """Two seconds of espeak-ng speech padded with silence, as 16 kHz WAV and FLAC bytes."""
    audio, sr = espeak("Crawled audio keeps its license and source.", "en")
    pad = silence(0.5, SAMPLE_RATE)
    speech = np.concatenate([pad, resample(audio, sr, SAMPLE_RATE), pad]).astype(np.float32)
    files = {}
    for fmt in ("WAV", "FLAC"):
        buffer = io.BytesIO()
        sf.write(buffer, speech, SAMPLE_RATE, format=fmt, subtype="PCM_16")
        files[fmt] = buffer.getvalue()
    return SpeechFiles(files["WAV"], files["FLAC"])


def listing_page() -> bytes:
    return f"""<!doctype html><html><head><title>episodes</title>
<meta name="license" content="{PAGE_LICENSE}"></head><body>
<a href="listed-1.wav">episode 1</a> <a href="/about.html">about</a>
<audio controls><source src="/audio/listed-2.flac" type="audio/flac"></audio>
<a href="/private/hidden.wav">members only</a> <a href="javascript:void(0)">x</a>
<a href="listed-1.wav#t=10">episode 1 again</a></body></html>""".encode()


def site_routes(speech: SpeechFiles) -> dict[str, hs.Route]:
    wav, flac = speech.wav, speech.flac
    html = b"<!DOCTYPE html><html><body>Not found, but 200</body></html>"
    return {
        "/robots.txt": hs.static(b"User-agent: *\nDisallow: /private/\n", "text/plain"),
        "/audio/one.wav": hs.static(wav, "audio/wav"),
        "/audio/two.flac": hs.static(flac, "audio/flac", {"Link": f'<{HEADER_LICENSE}>; rel="license"'}),
        "/audio/three.wav": hs.static(wav, "audio/x-wav"),
        "/audio/octet.wav": hs.static(wav, "application/octet-stream"),
        "/audio/listed-1.wav": hs.static(wav, "audio/wav"),
        "/audio/listed-2.flac": hs.static(flac, "audio/flac"),
        "/audio/listing.html": hs.static(listing_page(), "text/html; charset=utf-8"),
        "/about.html": hs.static(b"<html>about</html>", "text/html"),
        "/private/secret.wav": hs.static(wav, "audio/wav"),
        "/private/hidden.wav": hs.static(wav, "audio/wav"),
        "/slow.wav": hs.slow(3.0, hs.static(wav, "audio/wav")),
        "/flaky.wav": hs.flaky(2, hs.static(wav, "audio/wav")),
        "/broken.wav": hs.status(500),
        "/redirect-ok": hs.redirect("/audio/three.wav"),
        "/redirect-off": hs.redirect("http://not-allowed.invalid/x.wav"),
        "/redirect-private": hs.redirect("/private/secret.wav"),
        "/huge.wav": hs.endless(HUGE_BYTES, "audio/wav"),
        "/huge-declared.wav": hs.endless(HUGE_BYTES, "audio/wav", declare_length=True),
        "/html-as-audio.mp3": hs.static(html, "audio/mpeg"),
        "/audio-as-text.wav": hs.static(wav, "text/plain"),
        "/signed.wav": hs.static(wav, "audio/wav"),
    }


EXPECTED = {
    # path (as listed) -> crawl outcome: "kept" or the reject reason
    "/audio/one.wav": "kept",
    "/audio/two.flac": "kept",
    "/audio/octet.wav": "kept",
    "/audio/listing.html": None,  # a page: replaced by its links below
    "/audio/listed-1.wav": "kept",
    "/audio/listed-2.flac": "kept",
    "/private/hidden.wav": "robots_disallowed",
    "/private/secret.wav": "robots_disallowed",
    "/slow.wav": "timeout",
    "/flaky.wav": "kept",
    "/broken.wav": "http_error",
    "/missing.wav": "http_error",
    "/redirect-ok": "kept",
    "/redirect-off": "not_allowed_domain",
    "/redirect-private": "robots_disallowed",
    "/huge.wav": "too_large",
    "/huge-declared.wav": "too_large",
    "/html-as-audio.mp3": "bad_content_type",
    "/audio-as-text.wav": "bad_content_type",
    f"/signed.wav?token={SECRET}": "kept",
}
LISTED = [p for p in EXPECTED if p not in ("/audio/listed-1.wav", "/audio/listed-2.flac", "/private/hidden.wav")]
"""What the URL list holds; the other three paths are found on the listing page."""


@pytest.fixture
def site(speech_files):
    with hs.HttpTestServer(site_routes(speech_files)) as server:
        yield server


def fast_config(**changes) -> CrawlConfig:
    """Polite but quick: 20 requests/s per host, 0.5 s timeouts, 2 retries 50 ms apart."""
    values = dict(allowed_domains=["127.0.0.1"], per_host_rate=20.0, per_host_concurrency=4,
                  concurrency=8, timeout_s=0.5, retries=2, backoff_s=0.05, backoff_max_s=0.5,
                  seed=7, max_bytes=1024 * 1024)
    return CrawlConfig(**(values | changes))
