"""Live Rich line of a crawl: URLs done of queued, fetched, cached, failed by reason, bytes."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from audiomill.crawl.crawler import CrawlProgress, CrawlStats


class RichCrawlProgress(CrawlProgress):
    """Redraws at most 4 times a second; events arrive on the crawl's main thread."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.stats = CrawlStats()

    def __enter__(self) -> RichCrawlProgress:
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False,
                         redirect_stderr=False)
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(*exc)

    def url_queued(self, stats: CrawlStats) -> None:
        self._update(stats)

    def url_done(self, stats: CrawlStats) -> None:
        self._update(stats)

    def _update(self, stats: CrawlStats) -> None:
        self.stats = stats
        if self.live is not None:
            self.live.update(self._render())

    def _render(self) -> Text:
        s = self.stats
        done = s.fetched + s.cached + s.failed + s.pages
        reasons = ", ".join(f"{k} {v}" for k, v in s.failed_by_reason.most_common()) or "none"
        return Text(f"crawl {done:,}/{s.urls:,} URLs   "
                    f"fetched {s.fetched:,} ({s.bytes_fetched / 1e6:,.1f} MB)"
                    f"   already fetched {s.cached:,}   pages {s.pages:,}   failed {s.failed:,} ({reasons})")
