"""Read a finished dataset's manifest, index and rejects into a summary (for ``inspect``/``demo``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl

from audiomill import layout, schema, storage
from audiomill.formats.tables import read_table
from audiomill.manifest import read_manifest

DURATION_BUCKETS_S = (0, 2, 5, 10, 20, 30)


def read_parquet(root: str, name: str) -> pl.DataFrame:
    return pl.from_arrow(read_table(storage.join(root, name)))


def dataset_summary(root: str) -> dict[str, Any]:
    """Counts, hours, a duration histogram and top reject reasons of the dataset at ``root``."""
    manifest = read_manifest(root)
    index = read_parquet(root, layout.INDEX_FILE)
    rejects = read_parquet(root, layout.REJECTS_FILE)
    durations = index.get_column(schema.AUDIO_DURATION_S) if index.height else pl.Series([], dtype=pl.Float64)
    histogram = []
    edges = list(DURATION_BUCKETS_S) + [float("inf")]
    for low, high in zip(edges[:-1], edges[1:]):
        count = int(((durations >= low) & (durations < high)).sum()) if index.height else 0
        histogram.append({"range_s": f"{low}-{high if high != float('inf') else ''}", "segments": count})
    reasons = (rejects.group_by(schema.REJECT_STAGE, schema.REJECT_REASON).len()
               .sort(["len", schema.REJECT_REASON], descending=[True, False]).to_dicts()) if rejects.height else []
    return {
        "root": storage.redact(root),
        "counts": dataclasses.asdict(manifest.counts),
        "accounting_ok": manifest.accounting.ok,
        "hours_in": manifest.hours_in,
        "hours_out": manifest.hours_out,
        "index_rows": index.height,
        "index_hours": float(durations.sum() or 0) / 3600,
        "duration_histogram": histogram,
        "rejects": [{"stage": r[schema.REJECT_STAGE], "reason": r[schema.REJECT_REASON], "count": r["len"]}
                    for r in reasons],
        "stages": manifest.stages,
    }
