"""Finish a dataset: merge per-part tables, drop orphan shards, check accounting, write the manifest."""

from __future__ import annotations

import io
import json
import platform
import time
from collections import Counter
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from audiomill import __version__, layout, schema, storage
from audiomill.config import CleanConfig
from audiomill.orchestration.curate import policy_section
from audiomill.orchestration.dedup_job import run_dedup

if TYPE_CHECKING:
    from audiomill.orchestration.clean_job import Plan

_VERSIONED_PACKAGES = ("ray", "pyarrow", "numpy", "av", "soundfile", "silero-vad", "onnxruntime",
                       "webdataset", "polars", "faster-whisper", "torch", "boto3")


class AccountingError(RuntimeError):
    """Some input ended neither in kept segments nor in rejects."""


def finalize_dataset(cfg: CleanConfig, plan: Plan, stats_by_part: dict[int, dict[str, Any]],
                     wall_s: float, resumed_parts: int = 0,
                     models: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``models``: the exact model versions the job used (id, ref, sha256), by role (``asr``)."""
    part_ids = [p.part_id for p in plan.parts]
    dedup = run_dedup(cfg, part_ids)  # global step over part features (None when disabled)
    if dedup:
        stats_by_part = dedup.patched_stats(stats_by_part)
    _merge_tables(cfg.output, part_ids, layout.INDEX_FILE, schema.INDEX_SCHEMA, dedup and dedup.index_table)
    _merge_tables(cfg.output, part_ids, layout.REJECTS_FILE, schema.REJECT_SCHEMA, dedup and dedup.rejects_table)
    shards = [s for pid in part_ids for s in stats_by_part[pid]["shards"]]
    _remove_orphan_shards(cfg.output, {s["name"] for s in shards})
    held = [s for pid in part_ids for s in stats_by_part[pid].get("held_shards", [])]
    _remove_orphan_shards(cfg.output, {s["name"] for s in held}, layout.held_dir(cfg.output))
    totals = _sum_stats(stats_by_part[pid] for pid in part_ids)
    accounted = totals["kept_sources"] + totals["rejected_sources"]
    manifest = {
        "format": "audiomill-dataset/1",
        "created_unix": round(time.time(), 3),
        "audiomill_version": __version__,
        "versions": _versions(),
        "config": cfg.model_dump(mode="json", exclude={"inputs"}) | {
            "inputs": [storage.redact(u) for u in cfg.inputs]},
        "config_fingerprint": cfg.fingerprint(),
        "models": models or {},
        "counts": {
            "inputs": plan.sources,
            "kept_sources": totals["kept_sources"],
            "rejected_sources": totals["rejected_sources"],
            "segments": totals["segments"],
            "shards": len(shards),
            "parts": len(part_ids),
            "parts_resumed": resumed_parts,
            "skipped_by_filter": plan.listing.skipped_by_filter,
        },
        "accounting": {"inputs": plan.sources, "kept_plus_rejected": accounted,
                       "ok": plan.sources == accounted},
        "hours_in": totals["seconds_in"] / 3600,
        "hours_out": totals["seconds_out"] / 3600,
        "bytes_in": totals["bytes_in"],
        "rejects_by_reason": dict(sorted(totals["rejects_by_reason"].items())),
        "skipped_examples": plan.listing.skipped_examples,
        "wall_s": round(wall_s, 3),
        "stages": _stage_report(totals, wall_s),
        "shards": shards,
        "held_shards": held,  # audio of policy-rejected segments (see `audiomill curate`)
    }
    manifest["dedup"] = dedup.report if dedup else {"enabled": False}
    manifest.update(policy_section(cfg.output, cfg.policy))
    storage.write_text(storage.join(cfg.output, layout.MANIFEST_FILE), json.dumps(manifest, indent=2))
    if not manifest["accounting"]["ok"]:
        raise AccountingError(f"{plan.sources} inputs but {accounted} kept + rejected sources")
    return manifest


def _sum_stats(parts: Any) -> dict[str, Any]:
    totals: dict[str, Any] = Counter()
    reasons: Counter = Counter()
    stage_seconds: Counter = Counter()
    for stats in parts:
        for name in ("sources", "kept_sources", "rejected_sources", "segments", "seconds_in",
                     "seconds_out", "bytes_in"):
            totals[name] += stats[name]
        reasons.update(stats["rejects_by_reason"])
        stage_seconds.update(stats["stage_seconds"])
    totals["rejects_by_reason"] = reasons
    totals["stage_seconds"] = stage_seconds
    return totals


def _stage_report(totals: dict[str, Any], wall_s: float) -> dict[str, Any]:
    """Per stage: worker seconds summed over parts and audio throughput (x realtime per worker)."""
    report = {}
    for name, seconds in sorted(totals["stage_seconds"].items()):
        report[name] = {"worker_s": round(seconds, 3),
                        "x_realtime_per_worker": round(totals["seconds_in"] / seconds, 1) if seconds else None}
    report["job"] = {"wall_s": round(wall_s, 3),
                     "x_realtime": round(totals["seconds_in"] / wall_s, 1) if wall_s else None}
    return report


def _merge_tables(root: str, part_ids: list[int], name: str, base: pa.Schema,
                  transform: Callable[[int, pa.Table], pa.Table] | None = None) -> None:
    """Concatenate part tables in part order into one parquet file, one part in memory at a time.

    ``transform(part_id, table)`` (dedup) changes a part's table before it is merged.
    """
    uris = [layout.part_file(root, pid, name) for pid in part_ids]

    def load(pid: int, uri: str) -> pa.Table:
        table = pq.read_table(io.BytesIO(storage.read_bytes(uri)))
        return transform(pid, table) if transform else table

    schemas = ([pq.read_schema(io.BytesIO(storage.read_bytes(u))) for u in uris] if transform is None
               else [load(pid, u).schema for pid, u in zip(part_ids, uris)])
    unified = pa.unify_schemas([base, *schemas], promote_options="permissive") if schemas else base
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, unified, compression="zstd") as writer:
        for pid, uri in zip(part_ids, uris):
            table = load(pid, uri)
            for field in unified:
                if field.name not in table.column_names:
                    table = table.append_column(field, pa.nulls(table.num_rows, field.type))
            writer.write_table(table.select(unified.names).cast(unified))
        if not uris:
            writer.write_table(unified.empty_table())
    storage.write_bytes(storage.join(root, name), buffer.getvalue())


def _remove_orphan_shards(root: str, wanted: set[str], directory: str | None = None) -> None:
    """Shards left by an earlier run with another config or listing do not belong to the dataset."""
    directory = directory or layout.shards_dir(root)
    if not storage.exists(directory):
        return
    for info in storage.list_files(directory):
        if info.uri.rsplit("/", 1)[-1] not in wanted:
            storage.delete(info.uri)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
