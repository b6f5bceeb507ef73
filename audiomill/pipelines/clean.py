"""The clean pipeline: which stages run, in which order, with which config."""

from __future__ import annotations

import pyarrow as pa

from audiomill import schema
from audiomill.config import CleanConfig
from audiomill.curation.policy import Policy
from audiomill.formats.tables import read_table
from audiomill.models.registry import ResolvedModel, resolve_model
from audiomill.pipelines.asr import AsrStage, resolve_asr_model
from audiomill.pipelines.base import Resources, Stage
from audiomill.pipelines.decode import DecodeStage
from audiomill.pipelines.diarize import DiarizeStage
from audiomill.pipelines.mos import MosStage
from audiomill.pipelines.dedup_features import DedupFeaturesStage
from audiomill.pipelines.policy import PolicyStage
from audiomill.pipelines.provenance import ProvenanceStage
from audiomill.pipelines.quality import QualityStage
from audiomill.pipelines.segment import SegmentStage
from audiomill.pipelines.speech_music import SpeechMusicStage
from audiomill.pipelines.vad import VadStage
from audiomill.pipelines.writer import WriterStage

PART_URI = "part_uri"


class LoadPartStage(Stage):
    """Part descriptors (``part_uri``) in; that part's source rows out."""

    name = schema.StageName.INGEST.value
    resources = Resources(num_cpus=0.25)
    requires = frozenset({PART_URI})

    def __call__(self, table: pa.Table) -> pa.Table:  # descriptors carry no reject columns
        return self.process(table)

    def process(self, table: pa.Table) -> pa.Table:
        parts = [read_table(uri) for uri in table[PART_URI].to_pylist()]
        return pa.concat_tables(parts) if parts else table


def clean_stages(cfg: CleanConfig, fingerprint: str, policy: Policy | None,
                 models: dict[str, ResolvedModel] | None = None) -> list[Stage]:
    """Stages after part loading, ending with the writer (which emits one stats row per part).

    ``fingerprint``, ``policy`` and ``models`` come from ``jobs.prepare.prepare_job`` (the
    policy loaded and the ASR model pinned once per job); the model is resolved here if absent.
    The policy runs after every metric stage, and dedup features last (they move to their own
    table in the writer); ``pipelines.contract`` checks the order against declared columns.
    """
    asr: list[Stage] = []
    if cfg.asr.enabled:
        model = (models or {}).get("asr") or resolve_asr_model(cfg)
        asr = [AsrStage(cfg.asr, model, cfg.models.cache_dir)]
    speech_music: list[Stage] = []
    if cfg.speech_music.enabled:
        model = (models or {}).get("speech_music") or resolve_model(cfg.speech_music.model, cfg.models.registry)
        speech_music = [SpeechMusicStage(cfg.speech_music, model, cfg.models.cache_dir)]
    return [
        ProvenanceStage(cfg.ingest, cfg.provenance),  # first: a disallowed license costs no decode
        DecodeStage(cfg.decode),
        VadStage(cfg.vad, cache_dir=cfg.models.cache_dir),
        *([DiarizeStage(cfg.diarize)] if cfg.diarize.enabled else []),  # cuts spans per speaker
        SegmentStage(),
        QualityStage(),
        *([MosStage(cfg.mos)] if cfg.mos.coverage != "off" else []),
        *speech_music,
        *asr,
        *([PolicyStage(policy)] if policy is not None else []),
        *([DedupFeaturesStage(cfg.dedup, cfg.mos.coverage == "full")] if cfg.dedup.enabled else []),
        WriterStage(cfg.output, cfg.shard, fingerprint),
    ]
