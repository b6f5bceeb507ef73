"""Where a dataset was exported to, so a takedown can remove a source from the exports too.

``audiomill export`` appends one record per export to ``DATASET/exports.json`` (format, options,
absolute output path, host). A takedown re-runs each recorded export that this machine can
reach: the new export is written beside the old one and swapped in, so the old copy is never
half-rewritten. Exports on other hosts are reported, not silently skipped.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audiomill import layout, storage
from audiomill.exports.common import ExportSummary

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportRecord:
    format: str  # "lhotse" or "hf"
    out: str  # absolute local path on ``host``
    host: str
    options: dict[str, Any] = field(default_factory=dict)
    at_unix: float = 0.0

    def paths(self) -> tuple[Path, Path, Path]:
        """The export, the fresh copy being written and the old copy being replaced."""
        out = Path(self.out)
        return out, out.with_name(f".{out.name}.takedown-new"), out.with_name(f".{out.name}.takedown-old")

    @property
    def here(self) -> bool:
        out, _, old = self.paths()
        return self.host == socket.gethostname() and (out.is_dir() or old.is_dir())


def exporter(fmt: str, options: dict[str, Any]) -> Callable[[str, Path], ExportSummary]:
    """The export function for ``fmt`` with ``options`` bound: (dataset root, out dir) -> summary."""
    if fmt == "lhotse":
        from audiomill.exports.lhotse import export_lhotse

        return lambda root, out: export_lhotse(root, out, shar=bool(options.get("shar")))
    if fmt == "hf":
        from audiomill.exports.hf import export_hf

        return export_hf
    raise ValueError(f"unknown export format {fmt!r}")


def recorded_exports(root: str) -> list[ExportRecord]:
    uri = storage.join(root, layout.EXPORTS_FILE)
    if not storage.exists(uri):
        return []
    return [ExportRecord(**r) for r in json.loads(storage.read_text(uri))["exports"]]


def record_export(root: str, fmt: str, out: Path, options: dict[str, Any]) -> ExportRecord:
    """Add (or refresh the time of) the record of an export of ``root`` to ``out``."""
    record = ExportRecord(fmt, str(out.resolve()), socket.gethostname(), options, round(time.time(), 3))
    others = [r for r in recorded_exports(root) if (r.out, r.host) != (record.out, record.host)]
    records = [*others, record]
    storage.write_text(storage.join(root, layout.EXPORTS_FILE),
                       json.dumps({"exports": [asdict(r) for r in records]}, indent=2, sort_keys=True))
    return record


def run_export(root: str, fmt: str, out: Path, options: dict[str, Any]) -> ExportSummary:
    """Export ``root`` to the (empty or new) dir ``out`` and record it (a dataset we may not
    write to, e.g. a read-only bucket, still exports: the record is skipped with a warning)."""
    summary = exporter(fmt, options)(root, out)
    try:
        record_export(root, fmt, out, options)
    except storage.STORAGE_ERRORS as err:
        logger.warning("could not record this export in %s (%s): a takedown will not refresh it",
                       storage.redact(storage.join(root, layout.EXPORTS_FILE)), storage.redact_error(err, root))
    return summary


def refresh_exports(root: str) -> tuple[list[str], list[str]]:
    """Re-export every recorded export reachable here; (refreshed outs, outs not reachable here)."""
    refreshed, unreachable = [], []
    for record in recorded_exports(root):
        if not record.here:
            unreachable.append(f"{record.host}:{record.out}")
            continue
        out, fresh, old = record.paths()
        shutil.rmtree(fresh, ignore_errors=True)  # from an interrupted refresh
        exporter(record.format, record.options)(root, fresh)
        if out.is_dir():  # else an interrupted refresh already moved it to ``old``
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        fresh.rename(out)
        shutil.rmtree(old, ignore_errors=True)
        refreshed.append(record.out)
    return refreshed, unreachable
