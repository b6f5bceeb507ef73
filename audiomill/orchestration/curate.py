"""Re-apply a filter policy to a finished dataset from its tables, without decoding audio.

Candidates are every kept segment (``index.parquet``) plus every policy-rejected segment
(``rejects.parquet`` rows with reason ``policy``, which keep their metric columns and point at
their audio in ``held/`` shards). The new policy splits the candidates into a new index and new
policy rejects; other rejects (decode errors, no speech, ...) are carried over unchanged. Shards
are reused as they are, so a segment moves between index and rejects by rewriting two tables.

A later ``audiomill clean`` of the same output re-merges its parts with the clean-time policy.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audiomill import layout, schema, storage
from audiomill.curation.policy import Evaluation, Policy, evaluate, load_policy, policy_report, policy_source
from audiomill.schema import RejectReason

_REJECT_COLUMNS = [f.name for f in schema.REJECT_FIELDS]


class CurateError(RuntimeError):
    """The dataset cannot be curated as asked (accounting would break, held audio is missing)."""


def read_table(root: str, name: str) -> pa.Table:
    uri = storage.join(root, name)
    path = storage.local_path(uri)
    return pq.read_table(path if path else io.BytesIO(storage.read_bytes(uri)))


def split_candidates(index: pa.Table, rejects: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(segments the policy decides on, rejects it never touches).

    Policy rejects without held audio (no ``shard``) cannot come back, so they stay as they are.
    """
    is_policy = pc.equal(rejects[schema.REJECT_REASON], RejectReason.POLICY.value).fill_null(False)
    if schema.SHARD in rejects.column_names:
        is_policy = pc.and_(is_policy, pc.is_valid(rejects[schema.SHARD]))
    held = rejects.filter(is_policy).drop_columns(_REJECT_COLUMNS)
    candidates = pa.concat_tables([index, held], promote_options="permissive")
    return candidates, rejects.filter(pc.invert(is_policy))


def policy_section(root: str, policy_value: str | None) -> dict[str, Any]:
    """The manifest's ``policy`` and ``policy_report`` for a dataset whose tables are written."""
    if not policy_value:
        return {"policy": None, "policy_report": None}
    policy = load_policy(policy_value)
    candidates, _ = split_candidates(read_table(root, layout.INDEX_FILE), read_table(root, layout.REJECTS_FILE))
    evaluation = evaluate(policy, candidates)
    return {"policy": policy.summary(policy_source(policy_value)),
            "policy_report": _report(policy, evaluation, candidates)}


def _report(policy: Policy, evaluation: Evaluation, candidates: pa.Table) -> dict[str, Any]:
    durations = candidates[schema.AUDIO_DURATION_S].to_numpy(zero_copy_only=False)
    return policy_report(policy, evaluation, durations)


def curate_dataset(root: str, policy_value: str, out: str | None = None) -> dict[str, Any]:
    """Apply the policy to the dataset at ``root``; write index, rejects and manifest to ``out``
    (default: in place) and return the new manifest."""
    manifest_uri = storage.join(root, layout.MANIFEST_FILE)
    if not storage.exists(manifest_uri):
        raise FileNotFoundError(f"{storage.redact(root)} is not a finished dataset (no {layout.MANIFEST_FILE})")
    manifest = json.loads(storage.read_text(manifest_uri))
    policy = load_policy(policy_value)
    index, rejects = read_table(root, layout.INDEX_FILE), read_table(root, layout.REJECTS_FILE)
    candidates, untouched = split_candidates(index, rejects)
    evaluation = evaluate(policy, candidates)
    new_index = _index_rows(candidates.filter(pa.array(evaluation.passed)), index)
    failed = ~evaluation.passed
    new_rejects = _reject_rows(candidates.filter(pa.array(failed)),
                               [d for d, f in zip(evaluation.details, failed) if f], untouched, rejects)
    _update_manifest(manifest, new_index, new_rejects)
    manifest["policy"] = policy.summary(policy_source(policy_value))
    manifest["policy_report"] = _report(policy, evaluation, candidates)
    manifest["curated"] = {"from": storage.redact(root), "unix": round(time.time(), 3)}
    target = out or root
    if target != root:
        _link_shards(root, target, manifest)
    _write_parquet(storage.join(target, layout.INDEX_FILE), new_index)
    _write_parquet(storage.join(target, layout.REJECTS_FILE), new_rejects)
    storage.write_text(storage.join(target, layout.MANIFEST_FILE), json.dumps(manifest, indent=2))
    return manifest


def _index_rows(kept: pa.Table, index: pa.Table) -> pa.Table:
    """Kept candidates in the index's column order (then new metric columns), by part then key."""
    reject_only = set(schema.REJECT_SCHEMA.names) - set(schema.INDEX_SCHEMA.names)
    columns = index.column_names + [c for c in kept.column_names
                                    if c not in index.column_names and c not in reject_only]
    return kept.select(columns).sort_by([(schema.PART_ID, "ascending"), (schema.KEY, "ascending")])


def _reject_rows(failed: pa.Table, details: list[str | None], untouched: pa.Table,
                 rejects: pa.Table) -> pa.Table:
    """Untouched rejects plus newly failed segments, in the order ``clean`` writes them."""
    reason = RejectReason.POLICY.value
    failed = failed.append_column(schema.REJECT_STAGE, pa.array([schema.Stage.POLICY.value] * failed.num_rows, pa.string()))
    failed = failed.append_column(schema.REJECT_REASON, pa.array([reason] * failed.num_rows, pa.string()))
    failed = failed.append_column(schema.REJECT_DETAIL, pa.array(details, pa.string()))
    merged = pa.concat_tables([untouched, failed], promote_options="permissive")
    columns = rejects.column_names + [c for c in merged.column_names if c not in rejects.column_names]
    order = [(schema.PART_ID, "ascending"), (schema.SOURCE_URI, "ascending"), (schema.KEY, "ascending")]
    return merged.select(columns).sort_by(order)


def _update_manifest(manifest: dict[str, Any], index: pa.Table, rejects: pa.Table) -> None:
    """Counts, hours and accounting of the curated tables; raises CurateError if inputs go missing."""
    kept = set(index[schema.SOURCE_ID].to_pylist())
    rejected = set(rejects[schema.SOURCE_ID].to_pylist()) - kept
    counts = manifest["counts"]
    counts.update(kept_sources=len(kept), rejected_sources=len(rejected), segments=index.num_rows)
    inputs = counts["inputs"]
    manifest["accounting"] = {"inputs": inputs, "kept_plus_rejected": len(kept) + len(rejected),
                              "ok": inputs == len(kept) + len(rejected)}
    if not manifest["accounting"]["ok"]:
        raise CurateError(f"{inputs} inputs but {len(kept)} kept + {len(rejected)} rejected sources")
    durations = index[schema.AUDIO_DURATION_S].to_numpy(zero_copy_only=False)
    manifest["hours_out"] = float(np.nansum(durations)) / 3600
    manifest["rejects_by_reason"] = dict(sorted(Counter(rejects[schema.REJECT_REASON].to_pylist()).items()))


def _link_shards(root: str, target: str, manifest: dict[str, Any]) -> None:
    """Make ``target`` a complete dataset: hard-link (local) or copy each shard and held shard."""
    for shard in [*manifest.get("shards", []), *manifest.get("held_shards", [])]:
        source, dest = layout.shard_uri(root, shard["name"]), layout.shard_uri(target, shard["name"])
        local_source, local_dest = storage.local_path(source), storage.local_path(dest)
        if local_source and local_dest:
            os.makedirs(os.path.dirname(local_dest), exist_ok=True)
            if os.path.exists(local_dest):
                os.remove(local_dest)
            try:
                os.link(local_source, local_dest)
            except OSError:  # another filesystem: copy
                shutil.copyfile(local_source, local_dest)
        else:
            storage.write_bytes(dest, storage.read_bytes(source))


def _write_parquet(uri: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    storage.write_bytes(uri, buffer.getvalue())
