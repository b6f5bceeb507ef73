"""Rich rendering of job results: plans, dataset summaries, policy reports."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from rich.table import Column, Table

from audiomill.cli.console import console


def print_plan(result: dict[str, Any]) -> None:
    console.print(f"{result['sources']} sources in {result['parts']} parts; {result['parts_to_run']} to run; "
                  f"{result['skipped_by_filter']} files skipped by filters")


def print_summary(summary: dict[str, Any]) -> None:
    counts = summary["counts"]
    table = Table(title=f"dataset {summary['root']}", show_header=False)
    for label, value in (
        ("inputs", counts["inputs"]), ("kept sources", counts["kept_sources"]),
        ("rejected sources", counts["rejected_sources"]), ("segments", counts["segments"]),
        ("shards", counts["shards"]), ("hours in", f"{summary['hours_in']:.3f}"),
        ("hours out", f"{summary['hours_out']:.3f}"),
        ("accounting", "ok" if summary["accounting_ok"] else "BROKEN"),
        ("x realtime", summary["stages"]["job"]["x_realtime"]),
    ):
        table.add_row(label, str(value))
    console.print(table)
    if not counts["segments"]:
        console.print(f"[yellow]no segment was kept[/yellow]: all {counts['inputs']} inputs are in rejects.parquet "
                      "(see the reasons below)")
    histogram = Table("segment duration (s)", "segments", title="durations")
    for bucket in summary["duration_histogram"]:
        histogram.add_row(bucket["range_s"], str(bucket["segments"]))
    console.print(histogram)
    if summary["rejects"]:
        rejects = Table("stage", "reason", "rows", title="top reject reasons (a row is a source or a segment)")
        for row in summary["rejects"][:10]:
            rejects.add_row(row["stage"], row["reason"], str(row["count"]))
        console.print(rejects)


def print_policy_report(policy: dict[str, Any], report: dict[str, Any]) -> None:
    table = Table(Column("rule", no_wrap=True), Column("bounds", no_wrap=True), "rejected segs",
                  "rejected h", "h failing only this rule",
                  title=f"policy {policy['name']} ({policy['digest']}): kept {report['kept_hours']:.3f} h "
                        f"({report['kept_segments']} segs), rejected {report['rejected_hours']:.3f} h "
                        f"({report['rejected_segments']}) of {report['total_hours']:.3f} h")
    for row in report["rules"]:
        bounds = " ".join(f"{k} {row[k]:g}" for k in ("min", "max") if row[k] is not None)
        table.add_row(row["metric"], bounds, str(row["rejected_segments"]), f"{row['rejected_hours']:.3f}",
                      f"{row['only_hours']:.3f}")
    console.print(table)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr (Ray workers and the raylet write straight to it)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
