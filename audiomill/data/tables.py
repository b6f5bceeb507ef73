"""The segment table a loader iterates: the index, filtered, joined with token and label tables.

Everything here is small (one row per kept segment, no audio), so it is read once per process and
handed to workers. Side tables (``tokens/NAME@V/part-*.parquet``, ``labels/round-NNN/*.parquet``)
are joined by segment key; a segment a side table lacks gets nulls there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audiomill import layout, schema, storage
from audiomill.formats.tables import read_table

_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|!=|==|=|>|<)\s*(.*?)\s*$")


class DatasetError(ValueError):
    """The dataset (or a table the loader was asked to join) is missing or malformed."""


@dataclass(frozen=True)
class ColumnFilter:
    """Keep rows whose ``column`` satisfies ``op value`` (``=``/``!=`` take comma-separated values).

    Rows where the column is null fail every filter: a missing metric is never a pass.
    """

    column: str
    op: str
    value: Any

    def mask(self, table: pa.Table) -> pa.ChunkedArray:
        if self.column not in table.column_names:
            raise DatasetError(f"filter column {self.column!r} is not in the segment table "
                               f"(have: {', '.join(sorted(table.column_names))})")
        column = table[self.column]
        if self.op in ("=", "==", "!="):
            values = pa.array(self.value).cast(column.type)
            hit = pc.is_in(column, value_set=values)
            hit = pc.invert(hit) if self.op == "!=" else hit
            return pc.and_kleene(hit, pc.is_valid(column))
        function = {">=": pc.greater_equal, "<=": pc.less_equal, ">": pc.greater, "<": pc.less}[self.op]
        return pc.fill_null(function(column, pa.scalar(self.value).cast(column.type)), False)


def parse_filter(text: str) -> ColumnFilter:
    """``"q_snr_db>=20"``, ``"asr_language=en,de"``, ``"license!=proprietary"`` -> ColumnFilter."""
    match = _FILTER.match(text)
    if not match:
        raise DatasetError(f"filter {text!r}: expected COLUMN OP VALUE, e.g. q_snr_db>=20 or asr_language=en,de")
    column, op, raw = match.groups()
    if op in ("=", "==", "!="):
        return ColumnFilter(column, op, [_number_or_text(v) for v in raw.split(",")])
    value = _number_or_text(raw)
    if not isinstance(value, float):
        raise DatasetError(f"filter {text!r}: {op} needs a number")
    return ColumnFilter(column, op, value)


def _number_or_text(raw: str) -> Any:
    try:
        return float(raw)
    except ValueError:
        return raw.strip()


def read_index(root: str) -> pa.Table:
    uri = storage.join(root, layout.INDEX_FILE)
    if not storage.exists(uri):
        raise DatasetError(f"{storage.redact(root)} is not an audiomill dataset: {layout.INDEX_FILE} is missing")
    return read_table(uri)


def token_tables(root: str) -> list[str]:
    """Names (``tokenizer@version``) of the token tables a dataset has."""
    return _subdirs(storage.join(root, layout.TOKENS_DIR))


def label_rounds(root: str) -> list[str]:
    """Names (``round-NNN``) of the label rounds a dataset has, oldest first."""
    return [name for name in _subdirs(storage.join(root, layout.LABELS_DIR)) if name.startswith("round-")]


def _subdirs(uri: str) -> list[str]:
    if not storage.exists(uri):
        return []
    prefix = uri.rstrip("/") + "/"
    names = {info.uri[len(prefix):].split("/", 1)[0] for info in storage.list_files(uri)
             if info.uri.startswith(prefix) and info.uri.endswith(".parquet")}
    return sorted(names)


def read_side_table(directory: str, what: str) -> pa.Table:
    """All parquet files of one token table / label round, concatenated (first row per key wins)."""
    files = sorted(info.uri for info in storage.list_files(directory) if info.uri.endswith(".parquet")) \
        if storage.exists(directory) else []
    if not files:
        raise DatasetError(f"{what}: no parquet files under {storage.redact(directory)}")
    table = pa.concat_tables([read_table(f) for f in files], promote_options="permissive")
    if schema.KEY not in table.column_names:
        raise DatasetError(f"{what}: tables under {storage.redact(directory)} have no {schema.KEY!r} column")
    return table


def join_by_key(index: pa.Table, side: pa.Table, prefix: str) -> pa.Table:
    """Left join of ``side``'s columns onto ``index`` by key; a name the index has gets ``prefix``."""
    positions = pc.index_in(index[schema.KEY], value_set=side[schema.KEY])
    taken = side.take(positions)
    for name in side.column_names:
        if name == schema.KEY:
            continue
        target = name if name not in index.column_names else f"{prefix}{name}"
        index = index.append_column(target, taken[name])
    return index


def load_segments(root: str, tokens: tuple[str, ...] = (), labels: tuple[str, ...] = (),
                  filters: tuple[ColumnFilter, ...] = ()) -> pa.Table:
    """The index joined with the named token tables and label rounds, filtered, in shard order."""
    table = read_index(root)
    for name in tokens:
        side = read_side_table(layout.tokens_dir(root, name), f"token table {name}")
        table = join_by_key(table, side, f"tokens_{name.split('@')[0]}_")
    for name in labels:
        side = read_side_table(layout.label_round_dir(root, name), f"label round {name}")
        table = join_by_key(table, side, f"labels_{name.replace('-', '_')}_")
    for spec in filters:
        table = table.filter(spec.mask(table))
    return table.sort_by([(schema.SHARD, "ascending"), (schema.TAR_OFFSET, "ascending")])
