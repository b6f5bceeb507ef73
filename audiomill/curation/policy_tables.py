"""A filter policy over a dataset's tables: which rows it decides on, and what it reports.

Candidates are every kept segment (``index.parquet``) plus every policy-rejected segment that
still has held audio (``rejects.parquet`` rows with a reason of ``schema.POLICY_REASONS`` and a
``shard``); other rejects are never touched. ``clean`` reports on its merged tables, ``curate`` re-decides.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audiomill import schema
from audiomill.curation.policy import Evaluation, Policy, evaluate, policy_report, policy_source

REJECT_COLUMNS = [f.name for f in schema.REJECT_FIELDS]


def split_candidates(index: pa.Table, rejects: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(segments the policy decides on, rejects it never touches).

    Policy rejects without held audio (no ``shard``) cannot come back, so they stay as they are.
    """
    is_policy = policy_rejects(rejects)
    if schema.SHARD in rejects.column_names:
        is_policy = pc.and_(is_policy, pc.is_valid(rejects[schema.SHARD]))
    held = rejects.filter(is_policy).drop_columns(REJECT_COLUMNS)
    candidates = pa.concat_tables([index, held], promote_options="permissive")
    return candidates, rejects.filter(pc.invert(is_policy))


def policy_rejects(rejects: pa.Table) -> pa.ChunkedArray:
    """Per reject row: did a policy rule reject it (reason in ``schema.POLICY_REASONS``)?"""
    reasons = pa.array(sorted(schema.POLICY_REASONS), pa.string())
    return pc.is_in(rejects[schema.REJECT_REASON], value_set=reasons).fill_null(False)


def evaluate_candidates(policy: Policy, candidates: pa.Table) -> Evaluation:
    """Evaluate; with no candidate at all, columns no row produced count as empty, not missing."""
    if candidates.num_rows == 0:
        for name in policy.rules:
            if name not in candidates.column_names:
                candidates = candidates.append_column(name, pa.nulls(0, pa.float64()))
    return evaluate(policy, candidates)


def report(policy: Policy, evaluation: Evaluation, candidates: pa.Table) -> dict[str, Any]:
    durations = candidates[schema.AUDIO_DURATION_S].to_numpy(zero_copy_only=False)
    return policy_report(policy, evaluation, durations)


def policy_section(policy: Policy | None, policy_value: str | None, index: pa.Table,
                   rejects: pa.Table) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The manifest's ``policy`` and ``policy_report`` for merged dataset tables."""
    if policy is None or not policy_value:
        return None, None
    candidates, _ = split_candidates(index, rejects)
    evaluation = evaluate_candidates(policy, candidates)
    return policy.summary(policy_source(policy_value)), report(policy, evaluation, candidates)
