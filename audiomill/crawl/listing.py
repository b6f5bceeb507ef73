"""Audio links and license notes in an HTML listing page, and license notes in HTTP headers.

Links: ``<audio src>`` and ``<source src>`` always (their content type is checked when fetched),
``<a href>`` when the path has an audio extension or ``type="audio/..."``. License: the page's
``<link rel="license" href>``, ``<a rel="license" href>`` or ``<meta name="license" content>``;
headers ``Link: <...>; rel="license"`` or ``X-License``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from audiomill.config import CrawlConfig
from audiomill.crawl.urls import has_audio_extension

_LINK_HEADER = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')
_REL = re.compile(r'rel\s*=\s*"?([^";,]+)"?', re.IGNORECASE)


@dataclass
class PageLinks:
    """What a listing page offers: absolute audio URLs in page order, and its license if stated."""

    links: list[str] = field(default_factory=list)
    license: str | None = None


class _PageParser(HTMLParser):
    def __init__(self, page_url: str, cfg: CrawlConfig) -> None:
        super().__init__(convert_charrefs=True)
        self.base = page_url
        self.cfg = cfg
        self.result = PageLinks()
        self._seen: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "").strip() for name, value in attrs}
        rels = values.get("rel", "").lower().split()
        if tag == "base" and values.get("href"):
            self.base = urljoin(self.base, values["href"])
        elif tag in ("link", "a") and "license" in rels and values.get("href"):
            self.result.license = self.result.license or urljoin(self.base, values["href"])
        elif tag == "meta" and values.get("name", "").lower() in ("license", "dc.rights", "dcterms.license"):
            self.result.license = self.result.license or values.get("content") or None
        if tag in ("audio", "source") and values.get("src"):
            self._add(values["src"], always=True)
        elif tag == "a" and values.get("href"):
            self._add(values["href"], always=values.get("type", "").lower().startswith("audio/"))

    def _add(self, link: str, always: bool) -> None:
        url = urldefrag(urljoin(self.base, link)).url
        if urlsplit(url).scheme.lower() not in ("http", "https") or url in self._seen:
            return
        room = len(self.result.links) < self.cfg.max_links_per_page
        if room and (always or has_audio_extension(url, self.cfg)):
            self._seen.add(url)
            self.result.links.append(url)


def parse_listing(html: str, page_url: str, cfg: CrawlConfig) -> PageLinks:
    """Audio links (absolute, deduplicated, at most ``max_links_per_page``) and license of a page."""
    parser = _PageParser(page_url, cfg)
    parser.feed(html)
    parser.close()
    return parser.result


def header_license(headers: Message) -> str | None:
    """License URL from ``Link: <url>; rel="license"``, else the ``X-License`` value, else None."""
    for value in headers.get_all("Link") or []:
        for target, params in _LINK_HEADER.findall(value):
            rel = _REL.search(params)
            if rel and "license" in rel.group(1).lower().split():
                return target.strip()
    stated = (headers.get("X-License") or "").strip()
    return stated or None


def decode_page(body: bytes, headers: Message) -> str:
    """Page text in the charset the headers name (UTF-8 otherwise), undecodable bytes replaced."""
    charset = headers.get_content_charset() or "utf-8"
    try:
        return body.decode(charset, "replace")
    except LookupError:
        return body.decode("utf-8", "replace")
