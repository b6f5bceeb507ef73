"""Where a source came from and under what license, read from what the dataset already records.

A source's provenance comes, in order, from its ``prov_*`` columns (written by the provenance
stage), its manifest or crawl metadata (``license``, ``source_url``/``url``, ``fetched_unix``/
``fetched_at``), or nothing (null). Takedown matching, the licensing report and the provenance
stage all read it through :func:`provenance_of`, so they agree on what a source's license is.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from audiomill import schema

URL_KEYS = ("source_url", "url", "final_url")
TIME_KEYS = ("fetched_unix", "fetched_at", "acquired_at")
UNKNOWN = "unknown"
"""What reports show for a missing license or domain."""


@dataclass(frozen=True)
class Provenance:
    """One source's provenance; any field may be None (unknown). Time in Unix seconds."""

    license: str | None
    source_url: str | None
    domain: str | None
    fetched_unix: float | None


def host_of(uri: str | None) -> str | None:
    """Lower-case host of an http(s) URL (bucket of an s3:// URI); None for paths."""
    if not uri or "://" not in uri:
        return None
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https", "s3"):
        return None
    return (parts.hostname or "").lower().rstrip(".") or None


def domain_matches(host: str | None, domain: str) -> bool:
    """``host`` is ``domain`` or one of its subdomains (``cdn.example.org`` matches ``example.org``)."""
    domain = domain.lower().strip().strip(".").removeprefix("*.")
    return bool(host) and (host == domain or host.endswith("." + domain))


def _time(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    try:
        parsed = datetime.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def parse_metadata(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def from_metadata(source_uri: str | None, metadata: dict[str, Any]) -> Provenance:
    """Provenance from a source's manifest/crawl metadata; the domain falls back to the URI's host."""
    license_ = metadata.get("license")
    url = next((metadata[k] for k in URL_KEYS if isinstance(metadata.get(k), str) and metadata[k]), None)
    fetched = next((t for t in (_time(metadata.get(k)) for k in TIME_KEYS) if t is not None), None)
    return Provenance(license=str(license_).strip() if license_ not in (None, "") else None,
                      source_url=url, domain=host_of(url) or host_of(source_uri), fetched_unix=fetched)


def provenance_of(row: dict[str, Any]) -> Provenance:
    """Provenance of an index/rejects row: ``prov_*`` columns when present, else its metadata."""
    if any(row.get(c) is not None for c in schema.PROVENANCE_COLUMNS):
        return Provenance(row.get(schema.PROV_LICENSE), row.get(schema.PROV_SOURCE_URL),
                          row.get(schema.PROV_DOMAIN), row.get(schema.PROV_FETCHED_UNIX))
    return from_metadata(row.get(schema.SOURCE_URI), parse_metadata(row.get(schema.METADATA_JSON)))


def license_allowed(license_: str | None, allowed: list[str]) -> bool:
    """Case-insensitive membership; a source without a license passes only if ``unknown`` is allowed."""
    wanted = {a.strip().lower() for a in allowed}
    return (license_ or UNKNOWN).strip().lower() in wanted
