"""A Rich ``Live`` region as a context manager; subclasses say what to draw in ``_render``."""

from __future__ import annotations

from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live


class LiveDisplay:
    """Redraws at most 4 times a second; the final state stays on screen after exit."""

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
