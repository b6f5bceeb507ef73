"""Kept segments of a cleaned dataset, read for a round: index rows and their audio.

The index (``index.parquet``) gives each kept segment's shard and the byte range of its FLAC
member; audio is read by range (``data.ranged_read``), never by unpacking a tar, and the
shards are never written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiomill import layout, schema, storage
from audiomill.audio import decode_flac
from audiomill.data.ranged_read import read_segment
from audiomill.rounds.store import read_table

SEGMENT_COLUMNS = (schema.KEY, schema.SHARD, schema.TAR_OFFSET, schema.FLAC_BYTES, schema.AUDIO_DURATION_S)


class DatasetError(ValueError):
    """The dataset has no index (not made by ``audiomill clean``) or lacks a column."""


@dataclass(frozen=True)
class SegmentRef:
    key: str
    shard: str
    tar_offset: int
    flac_bytes: int
    duration_s: float


def kept_segments(dataset: str) -> list[SegmentRef]:
    """Every kept segment, sorted by key."""
    uri = storage.join(dataset, layout.INDEX_FILE)
    if not storage.exists(uri):
        raise DatasetError(f"{storage.redact(dataset)} has no {layout.INDEX_FILE}: make it with `audiomill clean`")
    table = read_table(uri)
    missing = [c for c in SEGMENT_COLUMNS if c not in table.column_names]
    if missing:
        raise DatasetError(f"{layout.INDEX_FILE} lacks columns {missing}")
    table = table.select(list(SEGMENT_COLUMNS)).sort_by(schema.KEY)
    return [SegmentRef(r[schema.KEY], r[schema.SHARD], int(r[schema.TAR_OFFSET]), int(r[schema.FLAC_BYTES]),
                       float(r[schema.AUDIO_DURATION_S])) for r in table.to_pylist()]


def read_audio(dataset: str, ref: SegmentRef) -> np.ndarray:
    """16 kHz float32 samples of one kept segment."""
    return decode_flac(read_segment(dataset, ref.shard, ref.key, ref.tar_offset, ref.flac_bytes).flac)


def subset(refs: list[SegmentRef], keys: list[str]) -> list[SegmentRef]:
    wanted = set(keys)
    return [r for r in refs if r.key in wanted]


__all__ = ["DatasetError", "SegmentRef", "kept_segments", "read_audio", "subset"]
