"""``audiomill takedown``: remove a source (or a domain's or license's sources) from a dataset everywhere."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.markup import escape

from audiomill import storage
from audiomill.cli.console import console, failure, usage_error
from audiomill.jobs.takedown import TakedownError, TakedownRequest, TakedownResult, run_takedown


def takedown(
    dataset: Annotated[str, typer.Argument(help="Dataset written by `audiomill clean` (dir or s3:// prefix).")],
    source: Annotated[Optional[str], typer.Option(
        "--source", help="A source's URI as the index shows it, or its source URL (crawl/manifest).")] = None,
    domain: Annotated[Optional[str], typer.Option(
        "--domain", help="Every source whose source URL is on this host or its subdomains.")] = None,
    license_: Annotated[Optional[str], typer.Option(
        "--license", help="Every source under this license (case-insensitive).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed; change nothing.")] = False,
    requested_by: Annotated[Optional[str], typer.Option(
        "--by", help="Who asked for it, recorded in the manifest (default: your user name).")] = None,
    note: Annotated[Optional[str], typer.Option("--note", help="Why (ticket, request id), recorded.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Remove every segment derived from matching sources: shards (repacked), held audio, index,
    rejects, dedup tables and index, token and label tables; record who/what/when in the manifest.

    Given several of --source/--domain/--license, a source must match all. Rerunning the same
    command finishes an interrupted takedown; a takedown that matches nothing changes nothing.

    Example: audiomill takedown ./dataset --domain podcasts.example.org --by legal --note TICKET-12
    """
    request = TakedownRequest(source=source, domain=domain, license=license_, requested_by=requested_by or "",
                              note=note)
    if not request.criteria():
        raise usage_error("give --source URI, --domain HOST or --license NAME")
    try:
        result = run_takedown(dataset, request, dry_run=dry_run)
    except TakedownError as err:
        raise usage_error(str(err)) from None
    except FileNotFoundError as err:
        raise failure(f"a dataset file is missing: {err}") from None
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        _render(dataset, result)


def _render(dataset: str, result: TakedownResult) -> None:
    shown = ", ".join(f"{k}={v}" for k, v in result.criteria.items())
    if not result.matched:
        console.print(f"no source in {escape(storage.redact(dataset))} matches {escape(shown)}; nothing changed")
        return
    verb = "would remove" if result.dry_run else "removed"
    console.print(f"{verb} {result.sources} source(s) matching {escape(shown)}: {result.segments} kept segment(s) "
                  f"({result.seconds:.1f} s), {result.rejected_rows} reject row(s), "
                  f"{result.held_segments} held segment(s)")
    if not result.dry_run:
        console.print(f"  {len(result.tars_rewritten)} tar(s) repacked, {len(result.tars_deleted)} deleted, "
                      f"{len(result.files_changed)} table(s) rewritten; recorded as {result.takedown_id}"
                      + (" (resumed)" if result.resumed else ""))
    for out in result.exports_refreshed:
        console.print(f"  {'would re-export' if result.dry_run else 're-exported'} {escape(out)} without it")
    for out in result.exports_unreachable:
        console.print(f"  [yellow]export {escape(out)} is not on this machine: re-export or delete it there[/yellow]")


app = typer.Typer(name="takedown", add_completion=False, help="Remove sources from a dataset everywhere.")
app.command(name="takedown")(takedown)
