"""Quality stage: per-segment ``q_*`` metrics (``curation/quality.py``) appended as columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audiomill import schema
from audiomill.curation.quality import DEFAULT_OPTIONS, MosEstimator, QualityOptions, segment_metrics
from audiomill.pipelines.base import Resources, Stage


class QualityStage(Stage):
    """Segment rows in; the same rows with one float64 column per metric (null where undefined).

    The whole batch is analysed in one vectorized pass over the Arrow audio buffer (no copy of
    each segment into Python bytes). A ``MosEstimator``, when given, adds ``q_mos``.
    """

    name = schema.StageName.QUALITY.value
    resources = Resources(num_cpus=1.0)
    requires = frozenset({schema.AUDIO, schema.KEY})
    adds = frozenset({*schema.QUALITY_COLUMNS, schema.Q_MOS})

    def __init__(self, options: QualityOptions = DEFAULT_OPTIONS, mos: MosEstimator | None = None) -> None:
        super().__init__()
        self.options = options
        self.mos = mos

    def process(self, table: pa.Table) -> pa.Table:
        samples, offsets = pcm_batch(table[schema.AUDIO])
        metrics = segment_metrics(samples, offsets, schema.SAMPLE_RATE, self.options)
        if self.mos is not None:
            metrics[schema.Q_MOS] = np.asarray(self.mos.predict(samples, offsets, schema.SAMPLE_RATE), np.float64)
        for name, values in metrics.items():
            table = table.append_column(name, pa.array(values, pa.float64(), from_pandas=True))
        return table


def pcm_batch(audio: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(all samples as one float32 array, sample offsets) of a binary column of float32 PCM.

    A view of the Arrow buffers, not a copy; null entries are empty segments.
    """
    if isinstance(audio, pa.ChunkedArray):  # combine_chunks copies even a single chunk
        array = audio.chunk(0) if audio.num_chunks == 1 else audio.combine_chunks()
    else:
        array = audio
    array = array.cast(pa.large_binary())
    _, offsets_buffer, data_buffer = array.buffers()
    byte_offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset:array.offset + len(array) + 1]
    if np.any(byte_offsets % 4):
        raise ValueError("audio column does not hold whole float32 samples")
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    samples = data[:data.size - data.size % 4].view(np.float32)
    return samples, byte_offsets // 4


def pcm_views(audio: pa.ChunkedArray) -> list[np.ndarray]:
    """float32 views of each row's PCM in the Arrow buffer (no copy); empty for null rows."""
    samples, offsets = pcm_batch(audio)
    return [samples[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
