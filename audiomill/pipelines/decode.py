"""Decode stage: read each source's bytes through storage and decode to 16 kHz mono float32."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
from audiomill import schema, storage
from audiomill.audio import DecodedAudio, DecodeRejected, decode_audio
from audiomill.config import DecodeConfig
from audiomill.pipelines.base import Resources, Stage, with_rejects
from audiomill.schema import RejectReason

logger = logging.getLogger(__name__)


class DecodeStage(Stage):
    """Source rows in; the same rows out with ``audio`` and ``orig_*`` columns, or a reject."""

    name = schema.StageName.DECODE.value
    resources = Resources(num_cpus=1.0)
    requires = frozenset({schema.SOURCE_ID, schema.SOURCE_URI, schema.READ_URI})
    adds = frozenset({schema.AUDIO, schema.AUDIO_DURATION_S, *schema.ORIG_COLUMNS})

    def __init__(self, limits: DecodeConfig) -> None:
        super().__init__()
        self.limits = limits

    def process(self, table: pa.Table) -> pa.Table:
        columns: dict[str, list[Any]] = {f.name: [] for f in schema.ORIG_FIELDS}
        columns[schema.AUDIO] = []
        columns[schema.AUDIO_DURATION_S] = []
        reasons: list[str | None] = []
        details: list[str | None] = []
        for row in table.select([schema.READ_URI, schema.SOURCE_BYTES, schema.SOURCE_OFFSET]).to_pylist():
            decoded, reason, detail = self._decode_one(row)
            reasons.append(reason)
            details.append(detail)
            columns[schema.ORIG_SAMPLE_RATE].append(decoded.orig_sample_rate if decoded else None)
            columns[schema.ORIG_CHANNELS].append(decoded.orig_channels if decoded else None)
            columns[schema.ORIG_CODEC].append(decoded.codec if decoded else None)
            columns[schema.ORIG_CONTAINER].append(decoded.container if decoded else None)
            columns[schema.ORIG_DURATION_S].append(decoded.orig_duration_s if decoded else None)
            columns[schema.ORIG_BANDWIDTH_HZ].append(decoded.orig_bandwidth_hz if decoded else None)
            columns[schema.AUDIO].append(decoded.samples if decoded else None)
            columns[schema.AUDIO_DURATION_S].append(decoded.duration_s if decoded else None)
        for f in schema.ORIG_FIELDS:
            table = table.append_column(f, pa.array(columns[f.name], f.type))
        table = table.append_column(schema.AUDIO, pcm_column(columns[schema.AUDIO]))
        table = table.append_column(schema.AUDIO_DURATION_S,
                                    pa.array(columns[schema.AUDIO_DURATION_S], pa.float64()))
        return with_rejects(table, self.name, reasons, details)

    def _decode_one(self, row: dict[str, Any]) -> tuple[DecodedAudio | None, str | None, str | None]:
        uri, size, offset = row[schema.READ_URI], row[schema.SOURCE_BYTES], row[schema.SOURCE_OFFSET]
        if size is not None and size > self.limits.max_file_bytes:
            return None, RejectReason.TOO_LARGE.value, f"{size} bytes > max {self.limits.max_file_bytes}"
        if size == 0:
            return None, RejectReason.EMPTY.value, "0 bytes"
        try:
            path = storage.local_path(uri)
            if path is not None and offset is None:
                return decode_audio(path, self.limits), None, None
            data = storage.read_bytes(uri, offset or 0, size)
            return decode_audio(data, self.limits), None, None
        except DecodeRejected as rejected:
            return None, rejected.reason.value, rejected.detail
        except storage.STORAGE_ERRORS as err:
            logger.warning("cannot read %s: %s", storage.redact(uri), type(err).__name__)
            return None, RejectReason.READ_ERROR.value, storage.redact_error(err, uri)[:300]


def pcm_column(samples: list[np.ndarray | None]) -> pa.Array:
    """A large_binary column of float32 PCM, one row per source (None: null), with one copy.

    ``pa.array`` of ``tobytes()`` copies each source twice (to bytes, then into Arrow); here the
    samples go straight into the column's data buffer, and a single source's array becomes the
    buffer itself (the column then shares its memory).
    """
    valid = np.array([s is not None for s in samples], dtype=bool)
    arrays = [s for s in samples if s is not None]
    sizes = np.zeros(len(samples), dtype=np.int64)
    sizes[valid] = [a.nbytes for a in arrays]
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    if len(arrays) == 1:  # one source (a long file is a part of its own): no copy at all
        data = np.ascontiguousarray(arrays[0]).view(np.uint8)
    else:
        data = np.concatenate(arrays).view(np.uint8) if arrays else np.zeros(0, np.uint8)
    nulls = int((~valid).sum())
    validity = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(pa.large_binary(), len(samples),
                                 [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls)
