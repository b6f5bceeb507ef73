"""Live Rich display of a clean job: parts, files, audio hours, x realtime, rejects by reason."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from audiomill.orchestration.clean_job import JobProgress, Plan
from audiomill.orchestration.live import LiveDisplay


class RichJobProgress(LiveDisplay, JobProgress):
    """Draws while a job runs; silent when the console is not a terminal (logs stay clean)."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.bar = Progress(TextColumn("[bold]parts"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=False)
        self.task = self.bar.add_task("parts", total=None)
        self.files = 0
        self.seconds_in = 0.0
        self.seconds_out = 0.0
        self.rejects: Counter = Counter()
        self.started = time.time()

    def planned(self, plan: Plan) -> None:
        done = len(plan.parts) - len(plan.todo)
        self.bar.update(self.task, total=len(plan.parts), completed=done)
        for part in plan.parts:
            if part.done_stats is not None:
                self._add(part.done_stats)
        self.started = time.time()
        self._refresh()

    def part_done(self, stats: dict[str, Any]) -> None:
        self.bar.advance(self.task)
        self._add(stats)
        self._refresh()

    def _add(self, stats: dict[str, Any]) -> None:
        self.files += stats["sources"]
        self.seconds_in += stats["seconds_in"]
        self.seconds_out += stats["seconds_out"]
        self.rejects.update(stats["rejects_by_reason"])

    def _render(self) -> Group:
        elapsed = max(time.time() - self.started, 1e-6)
        line = Text(f"files {self.files:,}   audio in {self.seconds_in / 3600:.2f} h   "
                    f"kept {self.seconds_out / 3600:.2f} h   {self.seconds_in / elapsed:,.0f}x realtime")
        rejects = ", ".join(f"{k} {v}" for k, v in self.rejects.most_common()) or "none"
        return Group(self.bar, line, Text(f"rejects: {rejects}", style="dim"))
