"""MOS stage: DNSMOS SIG/BAK/OVRL for a deterministic share of segments (or all of them).

Its own stage (not part of ``QualityStage``) so its cost shows separately in the per-stage worker
seconds the writer sums into part stats and the manifest (``timing_column("mos")``).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from audiomill import schema
from audiomill.config import MosConfig
from audiomill.models.dnsmos import Dnsmos
from audiomill.pipelines.base import Resources, Stage
from audiomill.pipelines.quality import pcm_batch

_HASH_SPACE = 2**32


def sampled(keys: list[str], share: float) -> np.ndarray:
    """Boolean mask: the keys whose blake2b hash falls in the lowest ``share`` of the hash space.

    Depends on the key only, so a rerun, another runner or another part layout picks the same
    segments, and a larger share picks a superset.
    """
    limit = share * _HASH_SPACE
    return np.array([int.from_bytes(hashlib.blake2b(k.encode(), digest_size=4).digest(), "big") < limit
                     for k in keys], dtype=bool)


class MosStage(Stage):
    """Segment rows in; ``q_mos`` (OVRL), ``q_mos_sig``, ``q_mos_bak``, ``q_mos_model`` out (null if not scored)."""

    name = schema.StageName.MOS.value
    resources = Resources(num_cpus=1.0)

    def __init__(self, cfg: MosConfig, model_path: str | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.model_path = model_path
        self.model: Dnsmos | None = None

    def setup(self) -> None:
        self.model = Dnsmos(self.model_path, threads=self.cfg.threads, hop_s=self.cfg.hop_s)

    def process(self, table: pa.Table) -> pa.Table:
        assert self.model is not None, "setup() not called"
        share = 1.0 if self.cfg.coverage == "full" else self.cfg.sample_share
        chosen = np.flatnonzero(sampled(table[schema.KEY].to_pylist(), share))
        samples, offsets = pcm_batch(table[schema.AUDIO])
        clips = [samples[offsets[i]:offsets[i + 1]] for i in chosen.tolist()]
        scores = self.model.score(clips)
        columns = {}
        for name, values in ((schema.Q_MOS, scores.ovrl), (schema.Q_MOS_SIG, scores.sig),
                             (schema.Q_MOS_BAK, scores.bak)):
            full = np.full(table.num_rows, np.nan)
            full[chosen] = values
            columns[name] = pa.array(full, pa.float64(), from_pandas=True)
        scored = np.zeros(table.num_rows, dtype=bool)
        scored[chosen] = True
        columns[schema.Q_MOS_MODEL] = pa.array([self.model.version if s else None for s in scored], pa.string())
        for name, values in columns.items():
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, values)
        return table
