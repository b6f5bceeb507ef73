"""A local site for crawl tests and demos: every kind of trouble a crawler meets on one server.

``site_routes`` serves robots.txt rules, audio with and without license headers, slow, flaky and
broken endpoints, redirects (allowed, off the allow-list, into a disallowed path), huge and
mislabeled bodies, a listing page with a license meta tag, and a URL that carries a token.
``EXPECTED`` says what a crawl must make of each path. Serve it with ``HttpTestServer``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from audiomill.config import CrawlConfig
from audiomill.schema import SAMPLE_RATE
from audiomill.testing import http_server as hs
from audiomill.testing.signals import espeak, resample, silence

SECRET = "SECRET-7f3a9c"
HUGE_BYTES = 64 * 1024 * 1024
PAGE_LICENSE = "CC-BY-SA-4.0"
HEADER_LICENSE = "https://creativecommons.org/licenses/by/4.0/"


SENTENCES = (
    "Crawled audio keeps its license and source.",
    "The weather station reported light rain in the valley.",
    "Seven brave sailors crossed the northern sea at dawn.",
    "Please remember to water the tomatoes every morning.",
    "Our library opens at nine and closes late on Thursdays.",
    "A quiet robot painted the fence a cheerful yellow.",
    "Twelve students built a bridge from paper and glue.",
    "The old clock in the tower struck midnight twice.",
    "Fresh bread smells wonderful on a cold winter day.",
    "Mountains look purple when the sun goes down.",
)


@dataclass(frozen=True)
class SpeechFiles:
    """One espeak-ng sentence per index, as 16 kHz WAV and FLAC bytes: every URL that a crawl
    keeps serves different speech, so deduplication keeps them all."""

    wav: tuple[bytes, ...]
    flac: tuple[bytes, ...]


def speech_files() -> SpeechFiles:
    """Each of ``SENTENCES`` spoken, padded with 0.5 s of silence on both sides."""
    pad = silence(0.5, SAMPLE_RATE)
    files: dict[str, list[bytes]] = {"WAV": [], "FLAC": []}
    for sentence in SENTENCES:
        audio, sr = espeak(sentence, "en")
        speech = np.concatenate([pad, resample(audio, sr, SAMPLE_RATE), pad]).astype(np.float32)
        for fmt, encoded in files.items():
            buffer = io.BytesIO()
            sf.write(buffer, speech, SAMPLE_RATE, format=fmt, subtype="PCM_16")
            encoded.append(buffer.getvalue())
    return SpeechFiles(tuple(files["WAV"]), tuple(files["FLAC"]))


def listing_page() -> bytes:
    """An HTML page: a license meta tag, two audio links (one repeated with a fragment), a link
    into a robots-disallowed path, and links that are not audio."""
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
        "/audio/one.wav": hs.static(wav[0], "audio/wav"),
        "/audio/two.flac": hs.static(flac[1], "audio/flac", {"Link": f'<{HEADER_LICENSE}>; rel="license"'}),
        "/audio/three.wav": hs.static(wav[2], "audio/x-wav"),
        "/audio/octet.wav": hs.static(wav[3], "application/octet-stream"),
        "/audio/listed-1.wav": hs.static(wav[4], "audio/wav"),
        "/audio/listed-2.flac": hs.static(flac[5], "audio/flac"),
        "/audio/listing.html": hs.static(listing_page(), "text/html; charset=utf-8"),
        "/about.html": hs.static(b"<html>about</html>", "text/html"),
        "/private/secret.wav": hs.static(wav[8], "audio/wav"),
        "/private/hidden.wav": hs.static(wav[8], "audio/wav"),
        "/slow.wav": hs.slow(30.0, hs.static(wav[9], "audio/wav")),
        "/flaky.wav": hs.flaky(2, hs.static(wav[6], "audio/wav")),
        "/broken.wav": hs.status(500),
        "/redirect-ok": hs.redirect("/audio/three.wav"),
        "/redirect-off": hs.redirect("http://not-allowed.invalid/x.wav"),
        "/redirect-private": hs.redirect("/private/secret.wav"),
        "/huge.wav": hs.endless(HUGE_BYTES, "audio/wav"),
        "/huge-declared.wav": hs.endless(HUGE_BYTES, "audio/wav", declare_length=True),
        "/html-as-audio.mp3": hs.static(html, "audio/mpeg"),
        "/audio-as-text.wav": hs.static(wav[9], "text/plain"),
        "/signed.wav": hs.static(wav[7], "audio/wav"),
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
LINKED = ("/audio/listed-1.wav", "/audio/listed-2.flac", "/private/hidden.wav")
LISTED = [p for p in EXPECTED if p not in LINKED]
"""What the URL list holds; the other three paths are found on the listing page."""


def fast_config(**changes: Any) -> CrawlConfig:
    """Polite but quick: 20 requests/s per host, 1 s timeouts (a loaded CI box still answers a
    loopback request within that; a robots.txt timeout would refuse the whole host), 2 retries."""
    values = dict(allowed_domains=["127.0.0.1"], per_host_rate=20.0, per_host_concurrency=4,
                  concurrency=8, timeout_s=1.0, retries=2, backoff_s=0.05, backoff_max_s=0.5,
                  seed=7, max_bytes=1024 * 1024)
    return CrawlConfig(**(values | changes))
