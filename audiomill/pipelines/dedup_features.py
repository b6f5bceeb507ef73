"""Dedup features stage: per segment, the PCM hash, audio window MinHashes and transcript MinHash.

Runs inside each part (``pipelines.clean`` places it after the metric stages, so the keep score
column exists), and the global dedup step (after all parts) reads only these compact columns. The writer moves them out of the index into ``features.parquet``.
The transcript signature is computed only when ``schema.DEDUP_TEXT_COLUMN`` is present (ASR ran).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audiomill import schema
from audiomill.config import DedupConfig
from audiomill.curation.dedup.exact import pcm_hash
from audiomill.curation.dedup.features import signatures_array, windows_array
from audiomill.curation.dedup.keep_score import keep_scores
from audiomill.curation.dedup.minhash import MinHasher
from audiomill.curation.dedup.text import text_signature
from audiomill.curation.dedup.windows import audio_window_signatures
from audiomill.pipelines.base import Resources, Stage
from audiomill.pipelines.quality import pcm_batch

AUDIO_SEED, TEXT_SEED = 1, 2


class DedupFeaturesStage(Stage):
    """Segment rows in; the same rows with ``dedup_*`` columns out."""

    name = schema.StageName.DEDUP.value
    resources = Resources(num_cpus=1.0)
    requires = frozenset({schema.AUDIO, schema.KEY})
    adds = frozenset({schema.DEDUP_PCM_HASH, schema.DEDUP_AUDIO_MINHASH, schema.DEDUP_TEXT_MINHASH,
                      schema.DEDUP_KEEP_SCORE})

    def __init__(self, cfg: DedupConfig, mos_in_keep_score: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.mos_in_keep_score = mos_in_keep_score  # False when MOS covers only a sample

    def setup(self) -> None:
        self.audio_hasher = MinHasher(self.cfg.num_perm, AUDIO_SEED)
        self.text_hasher = MinHasher(self.cfg.num_perm, TEXT_SEED)

    def process(self, table: pa.Table) -> pa.Table:
        if schema.KEY not in table.column_names or schema.AUDIO not in table.column_names:
            return table  # no segments in this batch (every source rejected)
        audio = _audio_views(table[schema.AUDIO])
        columns: dict[str, pa.Array] = {schema.DEDUP_KEEP_SCORE: self._keep_scores(table)}
        if self.cfg.exact:
            columns[schema.DEDUP_PCM_HASH] = pa.array([pcm_hash(a) for a in audio], pa.string())
        if self.cfg.audio:
            windows = [audio_window_signatures(a, self.audio_hasher) for a in audio]
            columns[schema.DEDUP_AUDIO_MINHASH] = windows_array(windows, self.cfg.num_perm)
        if self.cfg.text and schema.DEDUP_TEXT_COLUMN in table.column_names:
            texts = table[schema.DEDUP_TEXT_COLUMN].to_pylist()
            sigs = [text_signature(t, self.text_hasher, min_words=self.cfg.text_min_words) for t in texts]
            columns[schema.DEDUP_TEXT_MINHASH] = signatures_array(sigs, self.cfg.num_perm)
        for name, values in columns.items():
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, values)
        return table

    def _keep_scores(self, table: pa.Table) -> pa.Array:
        """Quality keep score (``curation/dedup/keep_score.py``), MOS as one of its terms.

        ``dedup.keep_score`` naming a column other than ``q_mos`` keeps that column's raw value
        instead (a user's explicit choice); null rows then fall back to the longest segment.
        """
        column = self.cfg.keep_score
        if column and column != schema.Q_MOS:
            if column in table.column_names:
                return table[column].cast(pa.float64()).combine_chunks()
            return pa.nulls(table.num_rows, pa.float64())
        return pa.array(keep_scores(table, column if self.mos_in_keep_score else None), pa.float64())


def _audio_views(column: pa.ChunkedArray) -> list[np.ndarray]:
    """float32 views of each row's PCM in the Arrow buffer (no copy); empty for null rows."""
    samples, offsets = pcm_batch(column)
    return [samples[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
