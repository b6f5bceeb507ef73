"""``audiomill takedown``: remove every segment of matching sources from a dataset, everywhere.

A source matches by its URI or source URL (``source``), the host of its source URL (``domain``,
subdomains included) or its license (``license``); given several, all must match. Its kept
segments leave their shards, its rejected ones leave the held tars, and its rows leave the index,
rejects, dedup table, cross-run dedup index, token and label tables and the part work files (whose
done markers are patched so a later ``clean`` over the same inputs keeps the part done). Other
rows that named a removed segment (a dedup duplicate's ``duplicate_of``) forget it. The manifest
gains a ``takedowns`` record: who, what, when, and counts (never the removed URIs or keys).

Resumable: the plan (removed keys and the tars to repack) is written to
``_takedown/pending.json`` first and deleted last; every rewrite is idempotent, so running the same
takedown again finishes an interrupted one. A request that matches nothing changes nothing.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audiomill import layout, schema, storage
from audiomill.exports.record import recorded_exports, refresh_exports
from audiomill.jobs import takedown_files as files
from audiomill.manifest import Accounting, ShardSummary, read_manifest
from audiomill.provenance import domain_matches, provenance_of

logger = logging.getLogger(__name__)

PENDING_DIR = "_takedown"
PENDING_FILE = "pending.json"
SOURCES_FILE = "sources.parquet"  # a part's listing (written by clean's planner)


class TakedownError(RuntimeError):
    """The takedown cannot run (bad request, not a dataset, another takedown half done)."""


@dataclass(frozen=True)
class TakedownRequest:
    """What to remove; at least one criterion. ``requested_by`` defaults to the OS user."""

    source: str | None = None
    domain: str | None = None
    license: str | None = None
    requested_by: str = ""
    note: str | None = None

    def criteria(self) -> dict[str, str]:
        return {k: v for k, v in (("source", self.source), ("domain", self.domain), ("license", self.license)) if v}

    def matches(self, row: dict[str, Any]) -> bool:
        prov = provenance_of(row)
        if self.source and self.source not in (row.get(schema.SOURCE_URI), prov.source_url):
            return False
        if self.domain and not domain_matches(prov.domain, self.domain):
            return False
        return not self.license or (prov.license or "").strip().lower() == self.license.strip().lower()


@dataclass
class TakedownResult:
    """What a takedown removed (or, with ``dry_run``, would remove). Seconds of kept audio."""

    criteria: dict[str, str]
    dry_run: bool
    sources: int = 0
    segments: int = 0  # kept segments removed from shards and index
    rejected_rows: int = 0  # reject rows removed (held_segments of them had audio in held/)
    held_segments: int = 0
    seconds: float = 0.0
    tars_rewritten: list[str] = field(default_factory=list)
    tars_deleted: list[str] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)
    takedown_id: str | None = None
    resumed: bool = False
    exports_refreshed: list[str] = field(default_factory=list)  # re-exported without the removed audio
    exports_unreachable: list[str] = field(default_factory=list)  # "host:path" recorded but not here

    @property
    def matched(self) -> bool:
        return self.sources > 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"matched": self.matched}


def _pending_uri(root: str) -> str:
    return storage.join(root, PENDING_DIR, PENDING_FILE)


def _matching(table: pa.Table, request: TakedownRequest) -> pa.Table:
    columns = [c for c in (schema.SOURCE_URI, schema.METADATA_JSON, *schema.PROVENANCE_COLUMNS)
               if c in table.column_names]
    mask = [request.matches(row) for row in table.select(columns).to_pylist()]
    return table.filter(pa.array(mask, pa.bool_()))


def plan_takedown(root: str, request: TakedownRequest) -> dict[str, Any]:
    """The pending plan: removed keys, sources, tars to repack and the counts to record."""
    if not request.criteria():
        raise TakedownError("give --source, --domain or --license")
    if not storage.exists(storage.join(root, layout.MANIFEST_FILE)):
        raise TakedownError(f"{storage.redact(root)} is not a finished dataset: {layout.MANIFEST_FILE} is missing")
    index = _matching(files.read_table(storage.join(root, layout.INDEX_FILE)), request)
    rejects = _matching(files.read_table(storage.join(root, layout.REJECTS_FILE)), request)
    kept_sources = set(index[schema.SOURCE_ID].to_pylist())
    sources = kept_sources | set(rejects[schema.SOURCE_ID].to_pylist())
    keys = {k for k in index[schema.KEY].to_pylist() + rejects[schema.KEY].to_pylist() if k}
    held = rejects.filter(pc.is_valid(rejects[schema.SHARD]))
    tars = sorted(set(index[schema.SHARD].to_pylist()) | set(held[schema.SHARD].to_pylist()))
    criteria = request.criteria()
    digest = hashlib.sha1(json.dumps([criteria, sorted(keys), sorted(sources)]).encode()).hexdigest()[:12]
    return {"id": f"takedown-{digest}", "criteria": criteria, "requested_by": request.requested_by or _user(),
            "note": request.note, "keys": sorted(keys), "sources": sorted(sources), "tars": tars,
            "counts": {"sources": len(sources), "kept_sources": len(kept_sources), "segments": index.num_rows,
                       "rejected_rows": rejects.num_rows, "held_segments": held.num_rows,
                       "seconds": float(pc.sum(index[schema.AUDIO_DURATION_S]).as_py() or 0.0)}}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _result(plan: dict[str, Any], dry_run: bool) -> TakedownResult:
    counts = plan["counts"]
    return TakedownResult(criteria=plan["criteria"], dry_run=dry_run, sources=counts["sources"],
                          segments=counts["segments"], rejected_rows=counts["rejected_rows"],
                          held_segments=counts["held_segments"], seconds=counts["seconds"],
                          takedown_id=plan["id"])


def run_takedown(root: str, request: TakedownRequest, dry_run: bool = False,
                 now_unix: float | None = None) -> TakedownResult:
    """Plan, then (unless ``dry_run`` or nothing matches) apply and record the takedown."""
    pending_uri = _pending_uri(root)
    pending = json.loads(storage.read_text(pending_uri)) if storage.exists(pending_uri) else None
    if pending and pending["criteria"] != request.criteria():
        raise TakedownError(f"an earlier takedown {pending['criteria']} is half done; rerun it first "
                            f"(audiomill takedown {root} " + " ".join(f"--{k} {v}" for k, v in
                                                                     pending["criteria"].items()) + ")")
    plan = pending or plan_takedown(root, request)
    result = _result(plan, dry_run)
    result.resumed = pending is not None
    if dry_run or not result.matched:
        if result.matched:  # what would be re-exported
            records = recorded_exports(root)
            result.exports_refreshed = [r.out for r in records if r.here]
            result.exports_unreachable = [f"{r.host}:{r.out}" for r in records if not r.here]
        return result
    if pending is None:
        storage.write_text(pending_uri, json.dumps(plan, sort_keys=True))
    _apply(root, plan, result)
    _record(root, plan, result, now_unix if now_unix is not None else time.time())
    result.exports_refreshed, result.exports_unreachable = refresh_exports(root)
    storage.delete(pending_uri)
    logger.info("takedown %s removed %d sources, %d segments", plan["id"], result.sources, result.segments)
    return result


def _apply(root: str, plan: dict[str, Any], result: TakedownResult) -> None:
    removal = files.Removal(frozenset(plan["keys"]), frozenset(plan["sources"]))
    tars = {name: files.repack_tar(root, name, removal) for name in plan["tars"]}
    result.tars_deleted = sorted(n for n, t in tars.items() if t.summary is None)
    result.tars_rewritten = sorted(n for n, t in tars.items() if t.summary is not None)
    deleted = set(result.tars_deleted)
    for part_id in _part_ids(root):
        _patch_part(root, part_id, plan["id"], removal, tars, deleted, result)
    for uri in _table_files(root):
        _, changed = files.patch_table(uri, removal, tars)
        if changed:
            result.files_changed.append(uri)
    plan["tars_result"] = {n: t.summary for n, t in tars.items()}


def _patch_part(root: str, part_id: int, takedown_id: str, removal: files.Removal,
                tars: dict[str, files.TarResult], deleted: set[str], result: TakedownResult) -> None:
    """A part's work files: the marker first (it needs the rows), then its tables."""
    index_removed = files.removed_rows(layout.part_file(root, part_id, layout.INDEX_FILE), removal)
    rejects_removed = files.removed_rows(layout.part_file(root, part_id, layout.REJECTS_FILE), removal)
    if files.patch_marker(root, part_id, takedown_id, index_removed, rejects_removed, deleted):
        result.files_changed.append(layout.marker_uri(root, part_id))
    for name in (layout.INDEX_FILE, layout.REJECTS_FILE, layout.FEATURES_FILE, SOURCES_FILE):
        uri = layout.part_file(root, part_id, name)
        if files.patch_table(uri, removal, tars)[1]:
            result.files_changed.append(uri)


def _part_ids(root: str) -> list[int]:
    parts = storage.join(root, layout.PARTS_DIR)
    if not storage.exists(parts):
        return []
    ids = set()
    for info in storage.list_files(parts):
        name = info.uri.rstrip("/").split("/")[-2]
        if name.startswith("part-") and name[5:].isdigit():
            ids.add(int(name[5:]))
    return sorted(ids)


def _table_files(root: str) -> list[str]:
    """Dataset tables that may hold removed rows, plus this dataset's cross-run dedup index file."""
    uris = [storage.join(root, name) for name in (layout.INDEX_FILE, layout.REJECTS_FILE, layout.DEDUP_FILE)]
    for directory in (layout.TOKENS_DIR, layout.LABELS_DIR):
        base = storage.join(root, directory)
        if storage.exists(base):
            uris += sorted(i.uri for i in storage.list_files(base) if i.uri.endswith(".parquet"))
    config = read_manifest(root).config
    index_root = (config.get("dedup") or {}).get("index")
    if index_root:
        # imported here: the dedup package pulls scipy, which would add ~2 s to every CLI start
        from audiomill.curation.dedup.index_store import run_file

        uris.append(run_file(index_root, config.get("output") or root))
    return uris


def _record(root: str, plan: dict[str, Any], result: TakedownResult, now_unix: float) -> None:
    """Update the manifest's shard lists and counts and append the takedown record (written last)."""
    manifest = read_manifest(root)
    takedowns = list(manifest.extra.get("takedowns", []))
    if any(t.get("id") == plan["id"] for t in takedowns):
        return  # recorded before an interruption
    taken = plan["counts"]
    shards = _updated(manifest.shards, plan["tars_result"])
    counts = dataclasses.replace(
        manifest.counts, segments=manifest.counts.segments - taken["segments"], shards=len(shards),
        inputs=manifest.counts.inputs - taken["sources"],
        kept_sources=manifest.counts.kept_sources - taken["kept_sources"],
        rejected_sources=manifest.counts.rejected_sources - (taken["sources"] - taken["kept_sources"]))
    takedowns.append({"id": plan["id"], "requested_by": plan["requested_by"], "at_unix": round(now_unix, 3),
                      "criteria": plan["criteria"], "note": plan["note"], "counts": taken,
                      "tars_rewritten": result.tars_rewritten, "tars_deleted": result.tars_deleted})
    manifest = manifest.replace(
        shards=shards, held_shards=_updated(manifest.held_shards, plan["tars_result"]), counts=counts,
        accounting=Accounting.of(counts.inputs, counts.kept_sources, counts.rejected_sources),
        hours_out=manifest.hours_out - taken["seconds"] / 3600, extra={**manifest.extra, "takedowns": takedowns})
    storage.write_text(storage.join(root, layout.MANIFEST_FILE), manifest.to_json())


def _updated(entries: tuple[ShardSummary, ...], summaries: dict[str, dict[str, Any] | None]
             ) -> tuple[ShardSummary, ...]:
    """Manifest shard entries with repacked tars' new summaries and deleted tars left out."""
    out = []
    for entry in entries:
        if entry.name not in summaries:
            out.append(entry)
        elif summaries[entry.name] is not None:
            out.append(ShardSummary.from_dict(summaries[entry.name]))
    return tuple(out)
