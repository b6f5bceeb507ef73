"""The clean pipeline: which stages run, in which order, with which config."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from audiomill import schema, storage
from audiomill.config import CleanConfig
from audiomill.curation.policy import load_policy
from audiomill.models.registry import ResolvedModel
from audiomill.pipelines.asr import AsrStage, resolve_asr_model
from audiomill.pipelines.base import Resources, Stage
from audiomill.pipelines.decode import DecodeStage
from audiomill.pipelines.diarize import DiarizeStage
from audiomill.pipelines.mos import MosStage
from audiomill.pipelines.dedup_features import DedupFeaturesStage
from audiomill.pipelines.policy import PolicyStage
from audiomill.pipelines.quality import QualityStage
from audiomill.pipelines.segment import SegmentStage
from audiomill.pipelines.vad import VadStage
from audiomill.pipelines.writer import WriterStage

PART_URI = "part_uri"


class LoadPartStage(Stage):
    """Part descriptors (``part_uri``) in; that part's source rows out."""

    name = schema.Stage.INGEST.value
    resources = Resources(num_cpus=0.25)

    def __call__(self, table: pa.Table) -> pa.Table:  # descriptors carry no reject columns
        return self.process(table)

    def process(self, table: pa.Table) -> pa.Table:
        parts = [pq.read_table(io.BytesIO(storage.read_bytes(uri))) for uri in table[PART_URI].to_pylist()]
        return pa.concat_tables(parts) if parts else table


def clean_stages(cfg: CleanConfig, models: dict[str, ResolvedModel] | None = None) -> list[Stage]:
    """Stages after part loading, ending with the writer (which emits one stats row per part).

    ``models`` are the job's pinned models (``pipelines.asr.pin_asr_model``); resolved here if absent.
    """
    asr: list[Stage] = []
    if cfg.asr.enabled:
        model = (models or {}).get("asr") or resolve_asr_model(cfg)
        asr = [AsrStage(cfg.asr, model, cfg.models.cache_dir)]
    return [
        DecodeStage(cfg.decode),
        VadStage(cfg.vad),
        *([DiarizeStage(cfg.diarize)] if cfg.diarize.enabled else []),  # cuts spans per speaker
        SegmentStage(),
        QualityStage(),
        *([MosStage(cfg.mos)] if cfg.mos.coverage != "off" else []),
        *asr,
        *([PolicyStage(load_policy(cfg.policy))] if cfg.policy else []),
        *([DedupFeaturesStage(cfg.dedup, cfg.mos.coverage == "full")]  # last: sees every metric column
          if cfg.dedup.enabled else []),
        WriterStage(cfg.output, cfg.shard, cfg.fingerprint()),
    ]
