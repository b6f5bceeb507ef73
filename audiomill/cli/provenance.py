"""Rendering of the licensing report (``jobs.provenance``) for ``audiomill inspect``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from audiomill.cli.console import console as default_console


def licensing_tables(report: dict[str, Any]) -> list[Table]:
    """Two tables (kept hours by license, by source domain) from ``LicensingReport.as_dict()``."""
    tables = []
    for key, title in (("by_license", "hours by license"), ("by_domain", "hours by source domain")):
        table = Table(title=title, title_justify="left")
        for name, justify in (("name", "left"), ("hours", "right"), ("segments", "right"), ("sources", "right")):
            table.add_column(name, justify=justify)
        for name, bucket in report[key].items():
            table.add_row(escape(name), f"{bucket['hours']:.3f}", str(bucket["segments"]), str(bucket["sources"]))
        tables.append(table)
    return tables


def print_licensing(report: dict[str, Any], console: Console | None = None) -> None:
    """Print the tables, then sources the ``ingest.licenses`` allow-list rejected, by license."""
    console = console or default_console
    for table in licensing_tables(report):
        console.print(table)
    rejected = report.get("rejected_by_license") or {}
    if rejected:
        shown = ", ".join(f"{escape(k)}: {v}" for k, v in rejected.items())
        console.print(f"sources rejected by ingest.licenses: {shown}")
