"""The column contract of a stage list: every stage finds the columns it requires.

Stages declare ``requires``/``adds``; a pipeline starts from the listing's source columns. The
job checks its stage list before any work, and a filter policy may name only columns that some
stage of the configured pipeline adds (a misspelled metric fails up front, not mid-job).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from audiomill import schema
from audiomill.pipelines.base import Stage

SOURCE_COLUMNS = frozenset(f.name for f in schema.SOURCE_FIELDS)
"""What a part's ``sources.parquet`` row carries when the first stage sees it."""


class ContractError(ValueError):
    """A stage list or policy asks for a column no earlier stage produces."""


def check_order(stages: Sequence[Stage], available: Iterable[str] = SOURCE_COLUMNS) -> frozenset[str]:
    """Raise ContractError at the first stage whose required columns are missing; return all columns."""
    columns = set(available)
    for stage in stages:
        missing = sorted(stage.requires - columns)
        if missing:
            raise ContractError(f"stage {stage.name!r} requires {', '.join(missing)}, which no earlier "
                                f"stage adds")
        columns |= stage.adds
    return frozenset(columns)


def check_policy_columns(rule_columns: Iterable[str], produced: frozenset[str]) -> None:
    """Every column a policy rule names must be produced by the pipeline."""
    unknown = sorted(set(rule_columns) - produced)
    if unknown:
        numeric = sorted(c for c in produced - schema.NOT_INDEXED - set(schema.SPAN_LIST_COLUMNS)
                         if c.startswith(("q_", "asr_", "vad_", "diar_")) or c.endswith("_s"))
        raise ContractError(f"policy names {', '.join(unknown)}, which no stage of this pipeline produces "
                            f"(available: {', '.join(numeric)})")
