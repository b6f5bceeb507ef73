"""The one console pair and the exit codes every command uses."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from audiomill import storage

EXIT_FAILED = 1
"""The job ran and failed (bad data it could not account for, a crashed worker, a storage outage)."""
EXIT_USAGE = 2
"""The command was wrong: bad flags, bad config, a missing input, a refused output."""
EXIT_INTERRUPTED = 130
"""Ctrl-C or SIGTERM: finished parts are kept, rerunning the same command resumes."""
INTERRUPTED = "interrupted — rerun the same command to resume (finished parts are kept)"

console = Console()
err_console = Console(stderr=True)


def caused_by_interrupt(err: BaseException) -> bool:
    """Whether Ctrl-C/SIGTERM lies in ``err``'s cause chain.

    A signal that lands while an extension module initialises comes out as that module's
    ``ImportError`` raised from the ``KeyboardInterrupt`` (onnxruntime's pybind11 init does this):
    it is an interrupt, not a job failure.
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def usage_error(message: str) -> typer.Exit:
    """Print ``error: message`` (secrets redacted) to stderr and return the exit to raise."""
    err_console.print(f"[red]error:[/red] {escape(storage.redact(message))}")
    return typer.Exit(EXIT_USAGE)


def failure(message: str) -> typer.Exit:
    """Print ``error: message`` to stderr and return the exit (code 1) to raise."""
    err_console.print(f"[red]error:[/red] {escape(storage.redact(message))}")
    return typer.Exit(EXIT_FAILED)
