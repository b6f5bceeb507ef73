"""The global dedup decision: after every part is written, which segments are duplicates.

Has the runner find verified duplicate edges over each part's ``features.parquet`` and the
cross-run index, if configured, read where the runner runs (exact PCM groups; LSH candidates on
audio windows and transcripts, verified on their signatures: in process, or as Ray Data
operations), and resolves clusters. It returns decisions only; ``jobs.finalize`` moves the audio
and rewrites the tables.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from audiomill import layout, schema, storage
from audiomill.config import DedupConfig
from audiomill.curation.dedup import edges as E
from audiomill.curation.dedup import index_store
from audiomill.curation.dedup.cluster import Decision, resolve
from audiomill.curation.dedup.search import EdgeSearch, read_part_features
from audiomill.formats.tables import read_table, write_table

logger = logging.getLogger(__name__)


class EdgeFinder(Protocol):
    """A runner: finds verified edges in process or on Ray Data (``execution.runners``)."""

    def find_dedup_edges(self, search: EdgeSearch) -> pa.Table: ...


@dataclass
class DedupDecisions:
    """Per part, the dropped segments; every segment's public decision; what the index keeps."""

    dropped: dict[int, dict[str, Decision]] = field(default_factory=dict)
    rows: list[Decision] = field(default_factory=list)
    kept_features: pa.Table | None = None
    report: dict[str, Any] = field(default_factory=dict)


def decide_duplicates(root: str, cfg: DedupConfig, part_ids: list[int], finder: EdgeFinder) -> DedupDecisions:
    """Cluster duplicates over all parts of the dataset at ``root``; no file is changed.

    The driver reads each part's keys, not its signatures (the finder reads those where it runs),
    and the kept features only when a cross-run index is configured."""
    feature_uris = [layout.part_file(root, pid, layout.FEATURES_FILE) for pid in part_ids]
    index_uris = index_store.other_run_files(cfg.index, root) if cfg.index else []
    search = EdgeSearch(feature_uris, index_uris, E.MatchOptions.from_config(cfg), cfg.num_perm)
    edges, nodes = E.edges_from_table(finder.find_dedup_edges(search))
    resolved = resolve(nodes, edges)
    decisions = DedupDecisions()
    kept_tables = []
    for pid, uri in zip(part_ids, feature_uris):
        keys = read_table(uri, columns=[schema.KEY])[schema.KEY].to_pylist() if storage.exists(uri) else []
        rows = [_public(resolved.get(k) or Decision(k, k, True)) for k in keys]
        decisions.rows += rows
        decisions.dropped[pid] = {d.key: d for d in rows if not d.kept}
        if cfg.index:
            part = read_part_features(uri, cfg.num_perm)
            kept_tables.append(part.filter(pa.array([d.kept for d in rows], pa.bool_())))
    if cfg.index:
        decisions.kept_features = (pa.concat_tables(kept_tables) if kept_tables
                                   else read_part_features("", cfg.num_perm))
    decisions.report = _report(decisions.rows, edges, len(index_uris))
    return decisions


def write_dedup_outputs(root: str, cfg: DedupConfig, decisions: DedupDecisions) -> None:
    """``dedup.parquet`` and, with ``dedup.index``, this run's file in the cross-run index."""
    table = pa.Table.from_pylist([{schema.KEY: d.key, schema.DEDUP_CLUSTER_ID: d.cluster_id,
                                   schema.DEDUP_KEPT: d.kept, schema.DEDUP_REASON: d.reason,
                                   schema.DUPLICATE_OF: d.duplicate_of} for d in decisions.rows],
                                 schema=schema.DEDUP_SCHEMA)
    write_table(storage.join(root, layout.DEDUP_FILE), table)
    if cfg.index:
        decisions.report["index_file"] = storage.redact(
            index_store.write_run_file(cfg.index, root, decisions.kept_features, cfg.num_perm))


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
