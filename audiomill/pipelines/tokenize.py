"""The tokenize stage: 25 Hz semantic token ids per segment, from a trained ``SemanticTokenizer``.

It adds ``tok_*`` columns (``schema.TOK_COLUMNS``) and never rejects a segment: tokens are a
sidecar, so a segment it cannot tokenize (too short, silent, NaN/inf samples) keeps its audio and
gets ``tok_skip_reason``/``tok_skip_detail`` instead of tokens. Inside ``clean`` it runs after
segmenting; the tokenize job (``jobs/tokenizer.py``) runs it over a finished dataset's parts.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from audiomill import schema
from audiomill.config import TokenizeConfig
from audiomill.pipelines.base import Resources, Stage

logger = logging.getLogger(__name__)

_FRAME = 640  # samples per 25 Hz token


def skip_reason(samples: np.ndarray, cfg: TokenizeConfig) -> tuple[str, str] | None:
    """Why a segment gets no tokens (reason code, detail), or None when it can be tokenized."""
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).sum())
        return schema.RejectReason.INVALID_AUDIO.value, f"{bad} NaN/inf samples"
    seconds = samples.size / schema.SAMPLE_RATE
    if seconds < cfg.min_duration_s:
        return schema.RejectReason.TOO_SHORT.value, f"{seconds:.3f} s < {cfg.min_duration_s} s"
    frames = samples[: samples.size // _FRAME * _FRAME].reshape(-1, _FRAME).astype(np.float64)
    loudest = 10 * np.log10(max(float((frames ** 2).mean(axis=1).max()), 1e-20))
    if loudest < cfg.silence_dbfs:
        return schema.RejectReason.SILENT.value, f"loudest 40 ms frame {loudest:.1f} dBFS < {cfg.silence_dbfs}"
    return None


class TokenizeStage(Stage):
    name = schema.Stage.TOKENIZE.value
    resources = Resources(num_cpus=1.0, actor=True)

    def __init__(self, cfg: TokenizeConfig, registry: str = "") -> None:
        super().__init__()
        self.cfg, self.registry = cfg, registry
        self.tokenizer = None

    def setup(self) -> None:
        from audiomill.models.tokenizer import SemanticTokenizer

        self.tokenizer = SemanticTokenizer.load(self.cfg.tokenizer, self.registry, device=self.cfg.device,
                                                threads=self.cfg.threads)

    def process(self, table: pa.Table) -> pa.Table:
        clips = [np.frombuffer(raw, dtype="<f4") if raw is not None else np.zeros(0, np.float32)
                 for raw in table[schema.AUDIO].to_pylist()]
        skips = [skip_reason(clip, self.cfg) for clip in clips]
        todo = [i for i, skip in enumerate(skips) if skip is None]
        encoded = dict(zip(todo, self.tokenizer.encode_batch([clips[i] for i in todo]), strict=True))
        tokens = [encoded[i].astype(np.int16).tolist() if i in encoded else None for i in range(len(clips))]
        columns = {
            schema.TOK_TOKENS: pa.array(tokens, pa.list_(pa.int16())),
            schema.TOK_NUM_TOKENS: pa.array([len(t) if t is not None else None for t in tokens], pa.int32()),
            schema.TOK_FPS: pa.array([self.tokenizer.fps] * len(clips), pa.float32()),
            schema.TOK_MODEL: pa.array([self.tokenizer.version] * len(clips), pa.string()),
            schema.TOK_SKIP_REASON: pa.array([s[0] if s else None for s in skips], pa.string()),
            schema.TOK_SKIP_DETAIL: pa.array([s[1] if s else None for s in skips], pa.string()),
        }
        for name, values in columns.items():
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, values)
        return table
