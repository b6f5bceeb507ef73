"""Reaching a Ray cluster from the CLI: which address, and submitting a job and following it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from audiomill.cli.console import EXIT_FAILED, EXIT_USAGE, err_console
from audiomill.execution import cluster as cluster_ops
from audiomill.execution import submit as job_ops


def resolve_address(address: str | None, state: Path = cluster_ops.DEFAULT_STATE) -> str:
    """Explicit address, else $RAY_API_SERVER_ADDRESS / $RAY_ADDRESS (http), else the local cluster."""
    for candidate in (address, os.environ.get("RAY_API_SERVER_ADDRESS"), os.environ.get("RAY_ADDRESS")):
        if candidate and candidate.startswith("http"):
            return candidate
    try:
        return cluster_ops.ClusterState.load(state).dashboard_url
    except cluster_ops.ClusterError as err:
        err_console.print(f"[red]error:[/red] no --address given and {err}")
        raise typer.Exit(EXIT_USAGE) from err


def submit_and_follow(cfg, address: str, detach: bool, as_json: bool, entry: str = "clean",  # noqa: ANN001
                      files: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
    """``clean|crawl --address``: submit, print the job id, then follow logs unless ``detach``."""
    url = resolve_address(None if address == "auto" else address)
    job_id = job_ops.submit_job(url, cfg, entry, files, args)
    err_console.print(f"submitted job [bold]{job_id}[/bold] to {url}")
    if detach:
        print(json.dumps({"job_id": job_id, "address": url}) if as_json else job_id)
        return
    logs: list[str] = []

    def show(text: str) -> None:
        logs.append(text)
        if not as_json:
            sys.stderr.write(text)

    status = job_ops.follow(url, job_id, show)
    manifest = job_ops.manifest_from_logs("".join(logs))
    if as_json and manifest is not None:
        print(manifest.to_json())
    if status != "SUCCEEDED":
        if as_json:
            sys.stderr.write("".join(logs)[-4000:])
        err_console.print(f"[red]job {job_id} {status}[/red]")
        raise typer.Exit(EXIT_FAILED)
    err_console.print(f"job {job_id} succeeded; dataset at {cfg.output}")
