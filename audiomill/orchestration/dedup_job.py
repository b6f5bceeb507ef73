"""The global dedup step: after every part is written, before the final index and rejects.

Reads each part's ``features.parquet`` (and the cross-run index, if configured), finds verified
duplicate edges (exact PCM groups; LSH candidates on audio windows and transcripts, verified on
their signatures), resolves clusters, writes ``dedup.parquet`` and returns one ``PartPatch`` per
part for ``finalize`` to apply. With the Ray runner the edge search runs on Ray Data (explode band
keys, groupby, join signatures, verify); with the local runner the same functions run in process.
Only edges (duplicates found) come back to the driver. Audio is never read, except to move
dropped segments' members between tars.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from audiomill import layout, schema, storage
from audiomill.config import CleanConfig
from audiomill.curation.dedup import edges as E
from audiomill.curation.dedup import index_store
from audiomill.curation.dedup.apply import PartPatch, repack_part
from audiomill.curation.dedup.cluster import AUDIO, EXACT, TEXT, Decision, resolve
from audiomill.curation.dedup.features import conform_features

logger = logging.getLogger(__name__)

DEDUP_SCHEMA = pa.schema([pa.field(schema.KEY, pa.string()), pa.field("cluster_id", pa.string()),
                          pa.field("kept", pa.bool_()), pa.field("reason", pa.string()),
                          pa.field(schema.DUPLICATE_OF, pa.string())])


@dataclass
class DedupResult:
    """Per-part patches plus the manifest's ``dedup`` section; hooks for ``finalize``."""

    root: str
    patches: dict[int, PartPatch] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def patched_stats(self, stats_by_part: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        return {pid: self.patches[pid].stats(stats, self._index(pid)) if pid in self.patches else stats
                for pid, stats in stats_by_part.items()}

    def index_table(self, part_id: int, table: pa.Table) -> pa.Table:
        return self.patches[part_id].index(table) if part_id in self.patches else table

    def rejects_table(self, part_id: int, table: pa.Table) -> pa.Table:
        return self.patches[part_id].rejects(table, self._index(part_id)) if part_id in self.patches else table

    def _index(self, part_id: int) -> pa.Table:
        return _read_table(layout.part_file(self.root, part_id, layout.INDEX_FILE))


def match_options(cfg: CleanConfig) -> E.MatchOptions:
    d = cfg.dedup
    kinds = tuple(kind for kind, on in ((EXACT, d.exact), (AUDIO, d.audio), (TEXT, d.text)) if on)
    return E.MatchOptions(kinds=kinds, bands=d.bands, rows=d.num_perm // d.bands,
                          window_threshold=d.window_threshold, min_coverage=d.min_coverage,
                          text_threshold=d.text_threshold, max_bucket=d.max_bucket)


def run_dedup(cfg: CleanConfig, part_ids: list[int]) -> DedupResult | None:
    """Decide duplicates over all parts, move dropped audio, write dedup.parquet and the index file."""
    if not cfg.dedup.enabled:
        return None
    feature_uris = [layout.part_file(cfg.output, pid, layout.FEATURES_FILE) for pid in part_ids]
    index_uris = index_store.other_run_files(cfg.dedup.index, cfg.output) if cfg.dedup.index else []
    if cfg.runner.kind == "ray" and _rows(feature_uris + index_uris) >= cfg.dedup.ray_min_segments:
        edge_table = _ray_edges(feature_uris, index_uris, cfg)
    else:
        edge_table = _local_edges(_load_all(feature_uris, index_uris, cfg.dedup.num_perm), cfg)
    edges, nodes = E.edges_from_table(edge_table)
    decisions = resolve(nodes, edges)
    result = DedupResult(cfg.output)
    held_names = {f.uri.rsplit("/", 1)[-1] for f in storage.list_files(layout.held_dir(cfg.output))} \
        if storage.exists(layout.held_dir(cfg.output)) else set()
    dedup_rows, kept_features = [], []
    for pid, uri in zip(part_ids, feature_uris):
        features = _read_features(uri, cfg.dedup.num_perm)
        keys = features[schema.KEY].to_pylist()
        part = [_public(decisions.get(k) or Decision(k, k, True)) for k in keys]
        dedup_rows += part
        dropped = {d.key: d for d in part if not d.kept}
        index = _read_table(layout.part_file(cfg.output, pid, layout.INDEX_FILE))
        result.patches[pid] = repack_part(cfg.output, index, dropped, held_names)
        kept_features.append(features.filter(pa.array([d.kept for d in part], pa.bool_())))
    _write_dedup_table(cfg.output, dedup_rows)
    result.report = _report(dedup_rows, edges, len(index_uris))
    if cfg.dedup.index:
        kept = pa.concat_tables(kept_features) if kept_features else conform_features(
            pa.table({schema.KEY: pa.array([], pa.string())}), cfg.dedup.num_perm, False)
        result.report["index_file"] = storage.redact(
            index_store.write_run_file(cfg.dedup.index, cfg.output, kept, cfg.dedup.num_perm))
    return result


def _public(decision: Decision) -> Decision:
    """Decision with cross-run keys shown as plain segment keys (the detail names the other run)."""
    if decision.duplicate_of is None or index_store.EXTERNAL_SEP not in decision.duplicate_of:
        return decision
    key, run = decision.duplicate_of.split(index_store.EXTERNAL_SEP, 1)
    return dataclasses.replace(decision, cluster_id=index_store.public_key(decision.cluster_id), duplicate_of=key,
                               detail=f"{decision.reason} of {key}, kept by an earlier run (dedup index {run})")


def _report(rows: list[Decision], edges: list, index_files: int) -> dict[str, Any]:
    dropped = Counter(d.reason for d in rows if not d.kept)
    clusters = {d.cluster_id for d in rows if not d.kept}
    return {"segments": len(rows), "kept": sum(d.kept for d in rows), "dropped": sum(dropped.values()),
            "dropped_by_reason": dict(sorted(dropped.items())), "clusters": len(clusters),
            "edges": dict(sorted(Counter(e.kind for e in edges).items())), "index_files": index_files}


def _write_dedup_table(root: str, rows: list[Decision]) -> None:
    table = pa.Table.from_pylist([{schema.KEY: d.key, "cluster_id": d.cluster_id, "kept": d.kept,
                                   "reason": d.reason, schema.DUPLICATE_OF: d.duplicate_of}
                                  for d in rows], schema=DEDUP_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    storage.write_bytes(storage.join(root, layout.DEDUP_FILE), buffer.getvalue())


def _rows(uris: list[str]) -> int:
    return sum(pq.read_metadata(io.BytesIO(storage.read_bytes(u))).num_rows for u in uris if storage.exists(u))


def _read_table(uri: str) -> pa.Table:
    return pq.read_table(io.BytesIO(storage.read_bytes(uri)))


def _read_features(uri: str, num_perm: int) -> pa.Table:
    """A part's features in the common shape; a missing file (part had no segments) is empty."""
    table = _read_table(uri) if storage.exists(uri) else pa.table({schema.KEY: pa.array([], pa.string())})
    return conform_features(table, num_perm, external=False)


def _load_all(feature_uris: list[str], index_uris: list[str], num_perm: int) -> pa.Table:
    tables = [_read_features(u, num_perm) for u in feature_uris]
    tables += [index_store.read_run_file(u, num_perm) for u in index_uris]
    return pa.concat_tables(tables) if tables else _read_features("", num_perm)


def _local_edges(features: pa.Table, cfg: CleanConfig) -> pa.Table:
    opts = match_options(cfg)
    pairs = E.candidate_pairs(E.explode(features, opts), opts.max_bucket)
    if pairs.num_rows == 0:
        return E.EDGE_SCHEMA.empty_table()
    return E.verify(E.join_side(E.join_side(pairs, features, "a"), features, "b"), opts)


def _ray_edges(feature_uris: list[str], index_uris: list[str], cfg: CleanConfig) -> pa.Table:
    """The same search on Ray Data: one block per feature file, shuffles sized to the job."""
    import ray

    opts, num_perm = match_options(cfg), cfg.dedup.num_perm
    items = [{"uri": u, "external": False} for u in feature_uris] + [{"uri": u, "external": True} for u in index_uris]
    if not items or not opts.kinds:
        return E.EDGE_SCHEMA.empty_table()
    partitions = max(1, min(16, len(items) // 64 + 1))  # one shuffle partition per ~64 feature files
    features = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        _load_batch, fn_kwargs={"num_perm": num_perm}, batch_size=None, batch_format="pyarrow")
    pairs = (features.map_batches(E.explode, fn_kwargs={"opts": opts}, batch_size=None, batch_format="pyarrow")
             .groupby([E.KIND, E.BAND_KEY], num_partitions=partitions)
             .map_groups(E.bucket_pairs, fn_kwargs={"max_bucket": opts.max_bucket}, batch_format="pyarrow")
             .materialize())
    if pairs.count() == 0:
        return E.EDGE_SCHEMA.empty_table()
    joined = pairs.groupby([E.KIND, E.KEY_A, E.KEY_B], num_partitions=partitions).count().select_columns(
        [E.KIND, E.KEY_A, E.KEY_B])
    for side in ("a", "b"):
        side_table = features.map_batches(E.side_columns, fn_kwargs={"side": side}, batch_size=None,
                                          batch_format="pyarrow")
        joined = joined.join(side_table, join_type="inner", num_partitions=partitions, on=(f"key_{side}",))
    verified = joined.map_batches(E.verify, fn_kwargs={"opts": opts}, batch_size=None, batch_format="pyarrow")
    tables = [t for t in verified.iter_batches(batch_size=None, batch_format="pyarrow") if t.num_rows]
    return pa.concat_tables(tables) if tables else E.EDGE_SCHEMA.empty_table()


def _load_batch(batch: pa.Table, num_perm: int) -> pa.Table:
    tables = []
    for uri, external in zip(batch["uri"].to_pylist(), batch["external"].to_pylist()):
        tables.append(index_store.read_run_file(uri, num_perm) if external else _read_features(uri, num_perm))
    return pa.concat_tables(tables)
