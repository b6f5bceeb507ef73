"""The stage contract: declared resources, ``setup()`` once per worker, Arrow table -> Arrow table.

A stage never imports Ray. Runners (``execution/runners``) decide where it runs. Rows already
rejected by an earlier stage pass through untouched; a stage only sees active rows in ``process``.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from audiomill import schema


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs; the runner sizes actor pools from it."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0


class Stage(abc.ABC):
    """One step of a pipeline. Subclasses set ``name`` and implement ``process``.

    ``requires`` and ``adds`` declare the columns a stage reads and writes (``schema`` names);
    ``pipelines.contract.check_order`` verifies a stage list against them, and policies may only
    name columns some stage adds.
    """

    name: ClassVar[str]
    resources: ClassVar[Resources] = Resources()
    requires: ClassVar[frozenset[str]] = frozenset()
    adds: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self._ready = False

    def setup(self) -> None:
        """Load expensive state (models). Called once per worker before the first batch."""

    @abc.abstractmethod
    def process(self, table: pa.Table) -> pa.Table:
        """Map active (not rejected) rows to output rows; may change the row count."""

    def __call__(self, table: pa.Table) -> pa.Table:
        if not self._ready:
            self.setup()
            self._ready = True
        started = time.perf_counter()
        active, rejected = split_rejected(table)
        out = self.process(active) if active.num_rows else active
        if rejected.num_rows:
            out = concat(out, rejected)
        elapsed = time.perf_counter() - started
        share = elapsed / out.num_rows if out.num_rows else 0.0
        column = schema.timing_column(self.name)
        values = pa.array([share] * out.num_rows, pa.float64())
        if column in out.column_names:
            values = pc.add(out[column].fill_null(0.0), values)
            return out.set_column(out.column_names.index(column), column, values)
        return out.append_column(column, values)


def split_rejected(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Return (active rows, rejected rows) of ``table``."""
    if schema.REJECT_REASON not in table.column_names:
        return table, table.slice(0, 0)
    reasons = table[schema.REJECT_REASON]
    rejected = len(reasons) - reasons.null_count
    if rejected in (0, table.num_rows):  # no filter: it would copy every column, audio included
        return (table, table.slice(0, 0)) if rejected == 0 else (table.slice(0, 0), table)
    rejected_mask = pc.is_valid(reasons)
    return table.filter(pc.invert(rejected_mask)), table.filter(rejected_mask)


def concat(*tables: pa.Table) -> pa.Table:
    """Concatenate tables whose columns differ, filling missing columns with nulls."""
    tables = [t for t in tables if t is not None]
    return pa.concat_tables(tables, promote_options="permissive")


def with_rejects(table: pa.Table, stage: str, reasons: list[str | None],
                 details: list[str | None], keep_audio: bool = False) -> pa.Table:
    """Set reject columns on ``table`` rows; ``None`` reason leaves a row active.

    Rejected rows lose their audio unless ``keep_audio`` (the policy stage keeps it so the writer
    can hold policy-rejected segments for ``audiomill curate``).
    """
    for name, values in ((schema.REJECT_STAGE, [stage if r else None for r in reasons]),
                         (schema.REJECT_REASON, reasons), (schema.REJECT_DETAIL, details)):
        array = pa.array(values, pa.string())
        if name in table.column_names:
            array = pc.coalesce(table[name], array)
            table = table.set_column(table.column_names.index(name), name, array)
        else:
            table = table.append_column(name, array)
    if schema.AUDIO in table.column_names and not keep_audio and any(reasons):
        # rejected rows need no audio downstream; skipped when nothing was rejected (a full copy)
        audio = pc.if_else(pc.is_valid(table[schema.REJECT_REASON]),
                           pa.scalar(None, table.schema.field(schema.AUDIO).type), table[schema.AUDIO])
        table = table.set_column(table.column_names.index(schema.AUDIO), schema.AUDIO, audio)
    return table
