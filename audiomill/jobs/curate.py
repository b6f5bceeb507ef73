"""Re-apply a filter policy to a finished dataset from its tables, without decoding audio.

Candidates are every kept segment (``index.parquet``) plus every policy-rejected segment
(``rejects.parquet`` rows with a reason of ``schema.POLICY_REASONS``, which keep their metric columns and point at
their audio in ``held/`` shards). The new policy splits the candidates into a new index and new
policy rejects; other rejects (decode errors, no speech, ...) are carried over unchanged. A
segment whose decision changed moves between its ``shards/`` tar and its ``held/`` companion
(``curation.relocate``), so ``shards/`` always holds exactly the index's keys; tars no decision
touches are reused (hard-linked into ``--out``).

A later ``audiomill clean`` of the same output re-merges its parts with the clean-time policy
(parts whose tars curate rebuilt in place lose their done marker and are redone).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audiomill import layout, schema, storage
from audiomill.curation.policy import load_policy, policy_source
from audiomill.curation.policy_tables import evaluate_candidates, policy_rejects, report, split_candidates
from audiomill.curation.relocate import HELD_PREFIX, KEPT_PREFIX, relocate
from audiomill.formats.shards import link_tars
from audiomill.formats.tables import read_table, write_table
from audiomill.jobs.lock import output_lock
from audiomill.manifest import Accounting, Manifest, read_manifest


class CurateError(RuntimeError):
    """The dataset cannot be curated as asked (accounting would break, held audio is missing)."""


def curate_dataset(root: str, policy_value: str, out: str | None = None) -> Manifest:
    """Apply the policy to the dataset at ``root``; write index, rejects and manifest to ``out``
    (default: in place) and return the new manifest. Holds the target's lock while writing."""
    with output_lock(out or root):
        return _curate(root, policy_value, out)


def _curate(root: str, policy_value: str, out: str | None) -> Manifest:
    manifest = read_manifest(root)
    policy = load_policy(policy_value)
    index = read_table(storage.join(root, layout.INDEX_FILE))
    rejects = read_table(storage.join(root, layout.REJECTS_FILE))
    candidates, untouched = split_candidates(index, rejects)
    evaluation = evaluate_candidates(policy, candidates)
    new_index = _index_rows(candidates.filter(pa.array(evaluation.passed)), index)
    failed = ~evaluation.passed
    new_rejects = _reject_rows(candidates.filter(pa.array(failed)),
                               [d for d, f in zip(evaluation.details, failed) if f],
                               [r for r, f in zip(evaluation.reasons, failed) if f], untouched, rejects)
    manifest = _recount(manifest, new_index, new_rejects).replace(
        policy=policy.summary(policy_source(policy_value)), policy_report=report(policy, evaluation, candidates))
    manifest = manifest.replace(extra={**manifest.extra, "curated": {"from": storage.redact(root),
                                                                     "unix": round(time.time(), 3)}})
    target = out or root
    if target != root:
        link_tars(root, target, [s.name for s in (*manifest.shards, *manifest.held_shards)])
    moves = relocate(target, new_index, _held(new_rejects))
    if target == root:  # the parts' own tables now point at moved audio: a later clean redoes them
        for part_id in sorted(moves.parts):
            storage.delete(layout.marker_uri(root, part_id))
    new_index, new_rejects = moves.apply(new_index), moves.apply(new_rejects)
    shards = moves.summaries(manifest.shards, KEPT_PREFIX)
    manifest = manifest.replace(shards=shards, held_shards=moves.summaries(manifest.held_shards, HELD_PREFIX),
                                counts=dataclasses.replace(manifest.counts, shards=len(shards)))
    write_table(storage.join(target, layout.INDEX_FILE), new_index)
    write_table(storage.join(target, layout.REJECTS_FILE), new_rejects)
    storage.write_text(storage.join(target, layout.MANIFEST_FILE), manifest.to_json())
    return manifest


def _held(rejects: pa.Table) -> pa.Table:
    """Policy rejects whose audio is held (they can come back under another policy)."""
    if schema.SHARD not in rejects.column_names:
        return rejects.slice(0, 0).append_column(schema.SHARD, pa.nulls(0, pa.string()))
    mask = pc.and_(policy_rejects(rejects), pc.is_valid(rejects[schema.SHARD]))
    return rejects.filter(mask)


def _index_rows(kept: pa.Table, index: pa.Table) -> pa.Table:
    """Kept candidates in the index's column order (then new metric columns), by part then key."""
    reject_only = set(schema.REJECT_SCHEMA.names) - set(schema.INDEX_SCHEMA.names)
    columns = index.column_names + [c for c in kept.column_names
                                    if c not in index.column_names and c not in reject_only]
    return kept.select(columns).sort_by([(schema.PART_ID, "ascending"), (schema.KEY, "ascending")])


def _reject_rows(failed: pa.Table, details: list[str | None], reasons: list[str | None], untouched: pa.Table,
                 rejects: pa.Table) -> pa.Table:
    """Untouched rejects plus newly failed segments, in the order ``clean`` writes them."""
    failed = failed.append_column(schema.REJECT_STAGE, pa.array([schema.StageName.POLICY.value] * failed.num_rows, pa.string()))
    failed = failed.append_column(schema.REJECT_REASON, pa.array(reasons, pa.string()))
    failed = failed.append_column(schema.REJECT_DETAIL, pa.array(details, pa.string()))
    merged = pa.concat_tables([untouched, failed], promote_options="permissive")
    columns = rejects.column_names + [c for c in merged.column_names if c not in rejects.column_names]
    order = [(schema.PART_ID, "ascending"), (schema.SOURCE_URI, "ascending"), (schema.KEY, "ascending")]
    return merged.select(columns).sort_by(order)


def _recount(manifest: Manifest, index: pa.Table, rejects: pa.Table) -> Manifest:
    """Counts, hours and accounting of the curated tables; raises CurateError if inputs go missing."""
    kept = set(index[schema.SOURCE_ID].to_pylist())
    rejected = set(rejects[schema.SOURCE_ID].to_pylist()) - kept
    counts = dataclasses.replace(manifest.counts, kept_sources=len(kept), rejected_sources=len(rejected),
                                 segments=index.num_rows)
    accounting = Accounting.of(counts.inputs, len(kept), len(rejected))
    if not accounting.ok:
        raise CurateError(f"{counts.inputs} inputs but {len(kept)} kept + {len(rejected)} rejected sources")
    durations = index[schema.AUDIO_DURATION_S].to_numpy(zero_copy_only=False)
    return manifest.replace(
        counts=counts, accounting=accounting, hours_out=float(np.nansum(durations)) / 3600,
        rejects_by_reason=dict(sorted(Counter(rejects[schema.REJECT_REASON].to_pylist()).items())))
