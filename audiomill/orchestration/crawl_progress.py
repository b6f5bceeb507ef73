"""Live Rich line of a crawl: URLs done of queued, fetched, cached, failed by reason, bytes."""

from __future__ import annotations


from rich.console import Console
from rich.text import Text

from audiomill.crawl.crawler import CrawlProgress, CrawlStats
from audiomill.orchestration.live import LiveDisplay


class RichCrawlProgress(LiveDisplay, CrawlProgress):
    """Events arrive on the crawl's main thread."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.stats = CrawlStats()

    def url_queued(self, stats: CrawlStats) -> None:
        self._update(stats)

    def url_done(self, stats: CrawlStats) -> None:
        self._update(stats)

    def _update(self, stats: CrawlStats) -> None:
        self.stats = stats
        self._refresh()

    def _render(self) -> Text:
        s = self.stats
        done = s.fetched + s.cached + s.failed + s.pages
        reasons = ", ".join(f"{k} {v}" for k, v in s.failed_by_reason.most_common()) or "none"
        return Text(f"crawl {done:,}/{s.urls:,} URLs   "
                    f"fetched {s.fetched:,} ({s.bytes_fetched / 1e6:,.1f} MB)"
                    f"   already fetched {s.cached:,}   pages {s.pages:,}   failed {s.failed:,} ({reasons})")
