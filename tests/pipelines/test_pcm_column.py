"""The decode stage's audio column (one copy or none) equals pa.array of bytes; split_rejected."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audiomill import schema
from audiomill.pipelines.base import split_rejected
from audiomill.pipelines.decode import pcm_column
from audiomill.pipelines.quality import pcm_views


def as_bytes_column(samples: list[np.ndarray | None]) -> pa.Array:
    return pa.array([s.tobytes() if s is not None else None for s in samples], pa.large_binary())


def test_pcm_column_equals_the_bytes_column_with_nulls_and_empty_rows() -> None:
    rng = np.random.default_rng(0)
    cases = [[], [None], [np.zeros(0, np.float32)], [rng.standard_normal(5).astype(np.float32)],
             [rng.standard_normal(3).astype(np.float32), None, np.zeros(0, np.float32),
              rng.standard_normal(7).astype(np.float32)]]
    for samples in cases:
        column = pcm_column(samples)
        column.validate(full=True)
        assert column.equals(as_bytes_column(samples))
        views = pcm_views(pa.chunked_array([column], pa.large_binary()))
        assert [v.tobytes() for v in views] == [s.tobytes() if s is not None else b"" for s in samples]


def test_a_single_source_column_shares_the_decoded_array() -> None:
    samples = np.arange(10, dtype=np.float32)
    column = pcm_column([samples])
    assert column.buffers()[2].address == samples.ctypes.data
    samples_view = np.arange(20, dtype=np.float32)[:10]  # a view of a larger buffer, as OutputBuffer gives
    assert pcm_column([samples_view]).equals(as_bytes_column([samples_view]))


def test_split_rejected_without_rejects_returns_the_table_itself() -> None:
    audio = pcm_column([np.ones(4, np.float32), np.zeros(2, np.float32)])
    table = pa.table({schema.AUDIO: audio, schema.REJECT_REASON: pa.array([None, None], pa.string())})
    active, rejected = split_rejected(table)
    assert active is table and rejected.num_rows == 0 and rejected.schema == table.schema
    all_rejected = table.set_column(1, schema.REJECT_REASON, pa.array(["x", "y"], pa.string()))
    active, rejected = split_rejected(all_rejected)
    assert rejected is all_rejected and active.num_rows == 0
    mixed = table.set_column(1, schema.REJECT_REASON, pa.array([None, "y"], pa.string()))
    active, rejected = split_rejected(mixed)
    assert active[schema.AUDIO].to_pylist() == [np.ones(4, np.float32).tobytes()]
    assert rejected[schema.REJECT_REASON].to_pylist() == ["y"]


def test_pcm_views_of_a_single_chunk_share_its_buffer() -> None:
    column = pcm_column([np.arange(6, dtype=np.float32), np.ones(2, np.float32)])
    (first, second) = pcm_views(pa.chunked_array([column]))
    assert first.ctypes.data == column.buffers()[2].address
    two_chunks = pa.chunked_array([column, column])
    assert [v.tolist() for v in pcm_views(two_chunks)] == [list(range(6)), [1, 1], list(range(6)), [1, 1]]


def test_segment_slices_equal_bytes_slices_of_their_source_in_one_copy() -> None:
    """The segment stage's gather (one copy) cuts what ``bytes`` of each slice cut, including a
    span past its source's end, an empty span, a null source and an array that starts at an offset."""
    from audiomill.pipelines.segment import _slice_audio

    rng = np.random.default_rng(1)
    sources = [rng.standard_normal(1600).astype(np.float32), None, rng.standard_normal(800).astype(np.float32)]
    column = pa.concat_arrays([pcm_column([np.ones(3, np.float32)]), pcm_column(sources)])[1:]  # offset 1
    rows = np.array([0, 0, 2, 2, 2])
    starts = np.array([0.0, 0.05, 0.0, 0.03, 0.04])
    ends = np.array([0.02, 0.2, 0.01, 0.03, 0.06])  # row 0's second span and row 2's last run past the end
    cut = _slice_audio(pa.chunked_array([column]), rows, starts, ends)
    cut.validate(full=True)
    expected = [sources[r].tobytes()[int(round(a * 16000)) * 4:int(round(b * 16000)) * 4]
                for r, a, b in zip(rows, starts, ends)]
    assert cut.to_pylist() == expected
    assert [len(e) for e in expected] == [1280, (1600 - 800) * 4, 640, 0, (800 - 640) * 4]  # clamped at the ends
