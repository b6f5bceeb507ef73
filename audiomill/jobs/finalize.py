"""Finish a dataset in one pass: decide duplicates, repack their audio, merge the part tables
(each read once), drop orphan shards, check accounting, write the manifest last."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from importlib import metadata

import pyarrow as pa

from audiomill import __version__, layout, schema, storage
from audiomill.curation.dedup.apply import PartPatch, repack_part
from audiomill.curation.policy_tables import policy_section
from audiomill.formats.tables import read_table, write_row_groups
from audiomill.jobs.dedup import DedupDecisions, EdgeFinder, decide_duplicates, write_dedup_outputs
from audiomill.jobs.plan import Plan
from audiomill.jobs.prepare import PreparedJob
from audiomill.manifest import Accounting, Counts, Manifest, ManifestError, PartStats, read_manifest

_VERSIONED_PACKAGES = ("ray", "pyarrow", "numpy", "av", "soundfile", "silero-vad", "onnxruntime",
                       "webdataset", "polars", "faster-whisper", "torch", "boto3")


class AccountingError(RuntimeError):
    """Some input ended neither in kept segments nor in rejects."""


@dataclass(frozen=True)
class PartTables:
    """One part's writer outputs, read once."""

    part_id: int
    index: pa.Table
    rejects: pa.Table

    @classmethod
    def read(cls, root: str, part_id: int) -> PartTables:
        return cls(part_id, read_table(layout.part_file(root, part_id, layout.INDEX_FILE)),
                   read_table(layout.part_file(root, part_id, layout.REJECTS_FILE)))


def finalize_dataset(prepared: PreparedJob, plan: Plan, stats_by_part: dict[int, PartStats],
                     started_unix: float, finder: EdgeFinder) -> Manifest:
    """Write index, rejects, dedup tables and manifest for a job whose parts are all done."""
    cfg, root = prepared.cfg, prepared.cfg.output
    decisions = decide_duplicates(root, cfg.dedup, plan.part_ids, finder) if cfg.dedup.enabled else None
    parts = [PartTables.read(root, pid) for pid in plan.part_ids]
    patches = _repack(root, parts, decisions)
    if decisions is not None:
        write_dedup_outputs(root, cfg.dedup, decisions)
    index = [patches[p.part_id].index(p.index) for p in parts]
    rejects = [patches[p.part_id].rejects(p.rejects, p.index) for p in parts]
    stats = [patches[p.part_id].stats(stats_by_part[p.part_id], p.index) for p in parts]
    merged_index = write_row_groups(storage.join(root, layout.INDEX_FILE), index, schema.INDEX_SCHEMA)
    merged_rejects = write_row_groups(storage.join(root, layout.REJECTS_FILE), rejects, schema.REJECT_SCHEMA)
    totals = sum(stats, PartStats())
    _remove_orphan_shards(layout.shards_dir(root), {s.name for s in totals.shards})
    _remove_orphan_shards(layout.held_dir(root), {s.name for s in totals.held_shards})
    policy = policy_section(prepared.policy, cfg.policy, merged_index, merged_rejects)
    manifest = _manifest(prepared, plan, totals, time.time() - started_unix,
                         decisions.report if decisions else {"enabled": False}, policy)
    manifest = manifest.replace(extra=_kept_history(root))
    storage.write_text(storage.join(root, layout.MANIFEST_FILE), manifest.to_json())
    if not manifest.accounting.ok:
        raise AccountingError(f"{plan.sources} inputs but {manifest.accounting.kept_plus_rejected} "
                              "kept + rejected sources")
    return manifest


def _repack(root: str, parts: list[PartTables], decisions: DedupDecisions | None) -> dict[int, PartPatch]:
    """Move each part's dropped duplicates into held-dup tars (or back, when decisions changed)."""
    if decisions is None:
        return {p.part_id: PartPatch() for p in parts}
    held_dir = layout.held_dir(root)
    held_names = {f.uri.rsplit("/", 1)[-1] for f in storage.list_files(held_dir)} if storage.exists(held_dir) else set()
    return {p.part_id: repack_part(root, p.index, decisions.dropped.get(p.part_id, {}), held_names) for p in parts}


def _manifest(prepared: PreparedJob, plan: Plan, totals: PartStats, wall_s: float, dedup: dict,
              policy: tuple[dict | None, dict | None]) -> Manifest:
    cfg = prepared.cfg
    return Manifest(
        created_unix=round(time.time(), 3), audiomill_version=__version__, versions=_versions(),
        config=cfg.model_dump(mode="json", exclude={"inputs"}) | {"inputs": [storage.redact(u) for u in cfg.inputs]},
        config_fingerprint=prepared.fingerprint, models=prepared.models_manifest(),
        counts=Counts(inputs=plan.sources, kept_sources=totals.kept_sources,
                      rejected_sources=totals.rejected_sources, segments=totals.segments,
                      shards=len(totals.shards), parts=len(plan.parts),
                      parts_resumed=len(plan.parts) - len(plan.todo),
                      skipped_by_filter=plan.listing.skipped_by_filter),
        accounting=Accounting.of(plan.sources, totals.kept_sources, totals.rejected_sources),
        hours_in=totals.seconds_in / 3600, hours_out=totals.seconds_out / 3600, bytes_in=totals.bytes_in,
        rejects_by_reason=dict(sorted(totals.rejects_by_reason.items())),
        skipped_examples=plan.listing.skipped_examples, wall_s=round(wall_s, 3),
        stages=_stage_report(totals, wall_s), shards=totals.shards, held_shards=totals.held_shards,
        dedup=dedup, policy=policy[0], policy_report=policy[1])


def _kept_history(root: str) -> dict:
    """Records a rerun must not lose (``takedowns``: sources removed on request stay recorded)."""
    try:
        previous = read_manifest(root)
    except (FileNotFoundError, ManifestError):
        return {}
    return {k: v for k, v in previous.extra.items() if k == "takedowns"}


def _stage_report(totals: PartStats, wall_s: float) -> dict[str, dict]:
    """Per stage: worker seconds summed over parts and audio throughput (x realtime per worker)."""
    report = {}
    for name, seconds in sorted(totals.stage_seconds.items()):
        report[name] = {"worker_s": round(seconds, 3),
                        "x_realtime_per_worker": round(totals.seconds_in / seconds, 1) if seconds else None}
    report["job"] = {"wall_s": round(wall_s, 3),
                     "x_realtime": round(totals.seconds_in / wall_s, 1) if wall_s else None}
    return report


def _remove_orphan_shards(directory: str, wanted: set[str]) -> None:
    """Shards left by an earlier run with another config or listing do not belong to the dataset."""
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
