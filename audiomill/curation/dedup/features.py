"""The per-segment dedup feature table: what the global step reads instead of audio.

One row per kept segment of a part (``_parts/part-N/features.parquet``) and, with the same
columns plus ``dataset``, in the cross-run index. Signatures are uint32 lists: one per audio window
(``dedup_audio_minhash``) and one for the transcript (``dedup_text_minhash``, null without one).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audiomill import schema

EXTERNAL = "external"  # true for rows from the cross-run index (kept by an earlier run)
DATASET = "dataset"  # cross-run index only: the dataset root that kept the row


def feature_schema(num_perm: int) -> pa.Schema:
    signature = pa.list_(pa.uint32(), num_perm)
    return pa.schema([
        pa.field(schema.KEY, pa.string()),
        pa.field(schema.SOURCE_ID, pa.string()),
        pa.field(schema.PART_ID, pa.int32()),
        pa.field(schema.AUDIO_DURATION_S, pa.float64()),
        pa.field(schema.DEDUP_KEEP_SCORE, pa.float64()),
        pa.field(schema.DEDUP_PCM_HASH, pa.string()),
        pa.field(schema.DEDUP_AUDIO_MINHASH, pa.list_(signature)),
        pa.field(schema.DEDUP_TEXT_MINHASH, signature),
    ])


def split_features(kept: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(kept rows without dedup columns, their feature table sorted by key).

    Without dedup columns (dedup disabled, or a part with no kept segment) the feature table is
    empty, so a stale one from an earlier run is always overwritten.
    """
    names = [c for c in kept.column_names if schema.is_dedup_feature(c)]
    if not names or kept.num_rows == 0:
        return kept.drop_columns(names), pa.table({schema.KEY: pa.array([], pa.string())})
    columns = [c for c in feature_schema(1).names if c in kept.column_names]
    features = kept.select(columns).sort_by(schema.KEY)
    return kept.drop_columns(names), features


def conform_features(features: pa.Table, num_perm: int, external: bool) -> pa.Table:
    """Columns of ``feature_schema`` (null-filled when absent) plus the ``external`` flag."""
    target = feature_schema(num_perm)
    arrays = [features[f.name].cast(f.type) if f.name in features.column_names else pa.nulls(features.num_rows, f.type)
              for f in target]
    table = pa.Table.from_arrays(arrays, schema=target)
    return table.append_column(EXTERNAL, pa.array([external] * table.num_rows, pa.bool_()))


def has_rows(features: pa.Table, column: str) -> pa.Array:
    """Mask of rows where ``column`` holds a usable value (non-null, non-empty)."""
    if column not in features.column_names:
        return pa.array([False] * features.num_rows)
    valid = pc.is_valid(features[column])
    if pa.types.is_list(features.schema.field(column).type):
        valid = pc.and_(valid, pc.greater(pc.list_value_length(features[column]).fill_null(0), 0))
    return valid


def windows_array(windows: list[np.ndarray], num_perm: int) -> pa.Array:
    """list<fixed_size_list<uint32>> from per-segment (windows, num_perm) arrays, without Python ints."""
    counts = np.array([len(w) for w in windows], dtype=np.int32)
    offsets = pa.array(np.r_[0, np.cumsum(counts)].astype(np.int32))
    flat = np.concatenate([w.reshape(-1, num_perm) for w in windows]) if windows else np.zeros((0, num_perm))
    values = pa.FixedSizeListArray.from_arrays(pa.array(flat.astype(np.uint32).ravel()), num_perm)
    return pa.ListArray.from_arrays(offsets, values)


def signatures_array(signatures: list[np.ndarray | None], num_perm: int) -> pa.Array:
    """fixed_size_list<uint32> with nulls where a signature is None."""
    filled = np.stack([s if s is not None else np.zeros(num_perm, np.uint32) for s in signatures]) \
        if signatures else np.zeros((0, num_perm), np.uint32)
    mask = pa.array([s is None for s in signatures], pa.bool_())
    return pa.FixedSizeListArray.from_arrays(pa.array(filled.astype(np.uint32).ravel()), num_perm, mask=mask)


def to_numpy_windows(column: pa.ChunkedArray | pa.Array) -> list[np.ndarray]:
    """Inverse of ``windows_array``: one (windows, num_perm) uint32 array per row (empty for null)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.value_type.list_size
    flat = array.values.values.to_numpy(zero_copy_only=False).reshape(-1, width)
    offsets = array.offsets.to_numpy()
    base = array.values.offset
    return [flat[offsets[i] - base: offsets[i + 1] - base] if array[i].is_valid else flat[:0]
            for i in range(len(array))]


def to_numpy_signatures(column: pa.ChunkedArray | pa.Array) -> list[np.ndarray | None]:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    flat = array.values.to_numpy(zero_copy_only=False).reshape(-1, width)
    base = array.offset
    return [flat[base + i] if array[i].is_valid else None for i in range(len(array))]
