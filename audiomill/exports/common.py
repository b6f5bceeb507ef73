"""What every export shares: the segment table to export, the shard check, FLAC members in order.

An export reads the dataset's index joined with every token table and label round it has
(``audiomill.data.tables``), refuses to start when a shard the index names is missing (naming
them), and then streams each shard once, handing out the stored FLAC bytes unchanged, so exported
samples are bit-identical to the dataset's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from audiomill import layout, schema, storage
from audiomill.data.reader import flac_member, read_shard
from audiomill.data.tables import label_rounds, load_segments, token_tables
from audiomill.formats.tables import read_schema

POSITION_COLUMNS = (schema.SHARD, schema.TAR_OFFSET, schema.FLAC_BYTES, schema.PART_ID)
"""Where a segment sits in this dataset's files: meaningless in an export."""


class MissingShardsError(FileNotFoundError):
    """The index names shards that are not in the dataset; ``missing`` lists them."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        shown = ", ".join(missing[:20]) + (f" (+{len(missing) - 20} more)" if len(missing) > 20 else "")
        super().__init__(f"{len(missing)} shard(s) named by the index are missing: {shown}")


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: segments, seconds of audio, files, and the side tables it carried."""

    out: str
    segments: int
    seconds: float
    files: list[str]
    token_tables: list[str]
    label_rounds: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"out": self.out, "segments": self.segments, "seconds": round(self.seconds, 3),
                "files": self.files, "token_tables": self.token_tables, "label_rounds": self.label_rounds}


@dataclass(frozen=True)
class ExportTable:
    table: pa.Table  # one row per kept segment, in shard order
    token_tables: list[str]
    label_rounds: list[str]
    side_columns: list[str]  # columns joined from token tables and label rounds


def export_table(root: str) -> ExportTable:
    """The index with every token table and label round joined, after checking all shards exist."""
    tokens, labels = token_tables(root), label_rounds(root)
    table = load_segments(root, tuple(tokens), tuple(labels))
    missing = sorted(s for s in set(table[schema.SHARD].to_pylist())
                     if not storage.exists(layout.shard_uri(root, s)))
    if missing:
        raise MissingShardsError(missing)
    index_columns = set(read_index_schema(root).names)
    return ExportTable(table, tokens, labels, [c for c in table.column_names if c not in index_columns])


def read_index_schema(root: str) -> pa.Schema:
    return read_schema(storage.join(root, layout.INDEX_FILE))


def iter_members(root: str, table: pa.Table) -> Iterator[tuple[dict[str, Any], bytes]]:
    """``(row, FLAC bytes)`` per row of ``table`` (sorted by shard), reading each shard once."""
    data, current = b"", None
    for row in table.to_pylist():
        if row[schema.SHARD] != current:
            current = row[schema.SHARD]
            data = read_shard(root, current)
        yield row, flac_member(data, row[schema.KEY], row[schema.TAR_OFFSET], row[schema.FLAC_BYTES], current)


def json_value(value: Any) -> Any:
    """A JSON-safe copy: NaN/inf become None (JSON has no such numbers), nested lists kept."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


def metadata(row: dict[str, Any]) -> dict[str, Any]:
    """The source's manifest/crawl metadata (license, source_url, ...) parsed from ``metadata_json``."""
    text = row.get(schema.METADATA_JSON)
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
