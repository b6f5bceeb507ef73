"""Progress of long jobs: a Rich live display on a terminal, one line per part otherwise.

Non-terminal runs (nohup, CI, Ray Jobs logs) print a progress line to stderr per finished part,
at most every ``LINE_INTERVAL_S`` seconds, so a long job shows life without flooding its log.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from audiomill.crawl.crawler import CrawlProgress, CrawlStats
from audiomill.jobs.clean import JobProgress
from audiomill.jobs.plan import Plan
from audiomill.manifest import PartStats

LINE_INTERVAL_S = 10.0


class LiveDisplay:
    """A Rich ``Live`` region; redraws at most 4 times a second; the final state stays on screen."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None

    def _render(self) -> RenderableType:
        raise NotImplementedError

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def __enter__(self) -> LiveDisplay:
        self.live = Live(self._render(), console=self.console, refresh_per_second=4,
                         transient=False, redirect_stderr=False)
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(*exc)


class JobTotals:
    """Running totals of finished parts (files, audio in/out, rejects by reason)."""

    def __init__(self) -> None:
        self.parts = self.done = self.files = 0
        self.seconds_in = self.seconds_out = 0.0
        self.rejects: Counter = Counter()
        self.started = time.time()

    def planned(self, plan: Plan) -> None:
        self.parts = len(plan.parts)
        for part in plan.parts:
            if part.done_stats is not None:
                self.add(part.done_stats)
        self.started = time.time()

    def add(self, stats: PartStats) -> None:
        self.done += 1
        self.files += stats.sources
        self.seconds_in += stats.seconds_in
        self.seconds_out += stats.seconds_out
        self.rejects.update(stats.rejects_by_reason)

    def line(self) -> str:
        elapsed = max(time.time() - self.started, 1e-6)
        return (f"files {self.files:,}   audio in {self.seconds_in / 3600:.2f} h   "
                f"kept {self.seconds_out / 3600:.2f} h   {self.seconds_in / elapsed:,.0f}x realtime")


class RichJobProgress(LiveDisplay, JobProgress):
    """Draws while a job runs on a terminal."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.bar = Progress(TextColumn("[bold]parts"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=False)
        self.task = self.bar.add_task("parts", total=None)
        self.totals = JobTotals()

    def planned(self, plan: Plan) -> None:
        self.totals.planned(plan)
        self.bar.update(self.task, total=self.totals.parts, completed=self.totals.done)
        self._refresh()

    def part_done(self, stats: PartStats) -> None:
        self.bar.advance(self.task)
        self.totals.add(stats)
        self._refresh()

    def _render(self) -> Group:
        rejects = ", ".join(f"{k} {v}" for k, v in self.totals.rejects.most_common()) or "none"
        return Group(self.bar, Text(self.totals.line()), Text(f"rejects: {rejects}", style="dim"))


class LineJobProgress(JobProgress):
    """One plain progress line per finished part (rate-limited) for logs that are not terminals."""

    def __init__(self, stream: TextIO | None = None, interval_s: float = LINE_INTERVAL_S) -> None:
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self.totals = JobTotals()
        self.last = 0.0

    def planned(self, plan: Plan) -> None:
        self.totals.planned(plan)
        self._print(f"planned {self.totals.parts} parts, {self.totals.parts - self.totals.done} to run")

    def part_done(self, stats: PartStats) -> None:
        self.totals.add(stats)
        now = time.time()
        if now - self.last >= self.interval_s or self.totals.done == self.totals.parts:
            self.last = now
            self._print(f"parts {self.totals.done}/{self.totals.parts}   {self.totals.line()}")

    def _print(self, text: str) -> None:
        self.stream.write(f"audiomill: {text}\n")
        self.stream.flush()


class RichCrawlProgress(LiveDisplay, CrawlProgress):
    """A live line of a crawl: URLs done of queued, fetched, cached, failed by reason, bytes."""

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
