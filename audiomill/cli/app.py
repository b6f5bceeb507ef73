"""The ``audiomill`` command line: one Typer app; every command and sub-app is registered here.

Commands are thin (parse, build config, call a job, render). Exit codes: 0 ok, 1 the job
failed, 2 the command was wrong, 130 interrupted (Ctrl-C or SIGTERM; rerun to resume).
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Annotated

import typer

from audiomill import __version__
from audiomill.cli import dataset, diarizer, export, ops, round as rounds, takedown, tokenizer
from audiomill.cli.console import EXIT_INTERRUPTED, INTERRUPTED, console, err_console
from audiomill.cli.models import models_app

app = typer.Typer(
    name="audiomill", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Turn raw audio into clean, segmented WebDataset shards for audio LLMs.\n\n"
         "Start with `audiomill demo`, then `audiomill clean DIR --out OUT` on your own audio.")

for command in (dataset.clean, dataset.curate, dataset.compact, dataset.crawl, dataset.inspect, dataset.dashboard, dataset.demo):
    app.command()(command)
app.command("plan")(ops.plan_command)
app.command("takedown")(takedown.takedown)
app.add_typer(export.app, name="export")
app.command("tokenize")(tokenizer.tokenize)
app.add_typer(tokenizer.app, name="tokenizer")
app.add_typer(diarizer.app, name="diarizer")
app.add_typer(rounds.app, name="round")
app.add_typer(models_app, name="models")
app.add_typer(ops.cluster_app, name="cluster")
app.add_typer(ops.jobs_app, name="jobs")


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"audiomill {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if verbose:  # our own debug lines only: HTTP client debug logs print signed URLs
        logging.getLogger("audiomill").setLevel(logging.DEBUG)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM stops a job the way Ctrl-C does: finished parts stay, a rerun resumes."""
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point; typer usage errors exit 2, job failures 1, interrupts 130."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        err_console.print(INTERRUPTED)
        sys.exit(EXIT_INTERRUPTED)
