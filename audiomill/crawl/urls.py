"""URL lists, URL checks and names: what may be fetched and where a fetched file is stored.

A URL list is text (one URL per line, ``#`` comments) or jsonl (``url`` plus any metadata columns
such as ``license`` or ``source``). Raw file names are ``sha1(url)[:16]`` plus an audio extension,
so the same URL always lands on the same name and a rerun can tell it was fetched.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import json
import mimetypes
import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from audiomill import storage
from audiomill.config import CrawlConfig

URL_KEYS = ("url", "uri")
"""jsonl columns that hold the URL; every other column becomes the fetched file's metadata."""

_RESERVED_METADATA = {"path", "audio_path", "audio", "file", "reject_stage", "reject_reason",
                      "reject_detail", "source_url", "page_url", "license_source", "content_type"}
_CONTENT_TYPE_EXTENSIONS = {
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav",
    "audio/wave": ".wav", "audio/vnd.wave": ".wav", "audio/flac": ".flac", "audio/x-flac": ".flac",
    "audio/ogg": ".ogg", "application/ogg": ".ogg", "audio/opus": ".opus", "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a", "audio/aac": ".aac", "audio/webm": ".webm", "audio/aiff": ".aiff",
    "audio/x-aiff": ".aiff", "audio/basic": ".au", "audio/x-ms-wma": ".wma",
}
_OCTET_STREAM = {"application/octet-stream", "binary/octet-stream", ""}
HTML_TYPES = {"text/html", "application/xhtml+xml"}


@dataclass(frozen=True)
class CrawlEntry:
    """One URL to fetch, with the metadata its list gave it; ``error`` marks an unusable line."""

    url: str
    metadata: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    error: str | None = None
    page_url: str | None = None  # the listing page this URL was found on (full, never written)
    page_license: tuple[str, str] | None = None  # (license, where it came from) of that page


def read_entries(uri: str) -> list[CrawlEntry]:
    """Entries of a URL list (local or s3); a ``.jsonl`` name selects the jsonl reading."""
    text = storage.read_text(uri)
    is_jsonl = uri.lower().endswith(".jsonl")
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        entries.append(_jsonl_entry(stripped, number) if is_jsonl else _checked(stripped, {}, number))
    return entries


def _jsonl_entry(line: str, number: int) -> CrawlEntry:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return CrawlEntry("", line=number, error=f"line {number} is not JSON")
    if not isinstance(record, dict):
        return CrawlEntry("", line=number, error=f"line {number} is not a JSON object")
    url = next((record[k] for k in URL_KEYS if record.get(k)), None)
    metadata = {k: v for k, v in record.items()
                if k not in URL_KEYS and k not in _RESERVED_METADATA and v is not None}
    if not isinstance(url, str):
        return CrawlEntry("", metadata, number, f"line {number} has no {'/'.join(URL_KEYS)}")
    return _checked(url.strip(), metadata, number)


def _checked(url: str, metadata: dict[str, Any], number: int) -> CrawlEntry:
    problem = url_problem(url)
    return CrawlEntry(url, metadata, number, f"line {number}: {problem}" if problem else None)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched at all (scheme, host, port), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as err:
        return f"malformed URL {shown_url(url)!r}: {err}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"not an http(s) URL: {shown_url(url)!r}"
    if not parts.hostname:
        return f"URL has no host: {shown_url(url)!r}"
    if any(ord(c) < 33 for c in url):
        return f"URL contains spaces or control characters: {shown_url(url)!r}"
    return None


def url_key(url: str) -> str:
    """Stable name stem of a URL's raw file (the full URL is hashed; it is never written)."""
    return hashlib.sha1(url.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def host_key(url: str) -> str:
    """``host:port`` that rate limits, concurrency and robots.txt are kept per."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def shown_url(url: str) -> str:
    """The URL as it may appear in manifests, rejects and logs: no userinfo, query or fragment
    (cut even when the text is not a well-formed URL)."""
    return storage.redact(url).split("?", 1)[0].split("#", 1)[0]


def domain_allowed(url: str, cfg: CrawlConfig) -> bool:
    """Host listed in ``allowed_domains`` (or a subdomain of one), or any public host when
    ``allow_any_domain``; private, loopback and link-local IPs always need an explicit listing."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if any(host == d or host.endswith("." + d) for d in cfg.allowed_domains):
        return True
    if not cfg.allow_any_domain:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host != "localhost" and not host.endswith(".localhost")
    return address.is_global


def path_extension(url: str) -> str:
    """Lowercase extension of the URL path (``.mp3``), or ""."""
    return posixpath.splitext(unquote(urlsplit(url).path))[1].lower()


def has_audio_extension(url: str, cfg: CrawlConfig) -> bool:
    return path_extension(url) in cfg.audio_extensions


def media_type(content_type: str | None) -> str:
    """``audio/mpeg`` of ``audio/mpeg; charset=...``; "" when missing."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_audio_response(content_type: str | None, url: str, cfg: CrawlConfig) -> bool:
    """An accepted audio type, or an octet-stream (or missing) type on a URL with an audio extension."""
    kind = media_type(content_type)
    if any(fnmatch.fnmatchcase(kind, pattern) for pattern in cfg.allowed_content_types if kind):
        return True
    return kind in _OCTET_STREAM and has_audio_extension(url, cfg)


def is_html(content_type: str | None) -> bool:
    return media_type(content_type) in HTML_TYPES


def raw_extension(urls: list[str], content_type: str | None, cfg: CrawlConfig) -> str:
    """Extension of the stored file: the first URL path with an audio extension, else one from the
    content type, else ``.audio`` (decoding probes the bytes, the name is only a hint)."""
    for url in urls:
        if has_audio_extension(url, cfg):
            return path_extension(url)
    kind = media_type(content_type)
    return _CONTENT_TYPE_EXTENSIONS.get(kind) or mimetypes.guess_extension(kind or "x/x") or ".audio"


def looks_like_html(head: bytes) -> bool:
    """True when a body's first bytes are an HTML document (e.g. an error page sent as audio)."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))
