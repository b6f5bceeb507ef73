"""Crawl fixtures: real speech files (espeak-ng) and the local crawl test site on 127.0.0.1."""

from __future__ import annotations

import pytest

from audiomill.testing import crawl_site
from audiomill.testing import http_server as hs


@pytest.fixture(scope="session")
def speech_files() -> crawl_site.SpeechFiles:
    return crawl_site.speech_files()


@pytest.fixture
def site(speech_files):
    with hs.HttpTestServer(crawl_site.site_routes(speech_files)) as server:
        yield server
