"""The clean pipeline: which stages run, in which order, with which config."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import io

from audiomill import schema, storage
from audiomill.config import CleanConfig
from audiomill.pipelines.base import Resources, Stage
from audiomill.pipelines.decode import DecodeStage
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


def clean_stages(cfg: CleanConfig) -> list[Stage]:
    """Stages after part loading, ending with the writer (which emits one stats row per part)."""
    return [
        DecodeStage(cfg.decode),
        VadStage(cfg.vad),
        SegmentStage(),
        WriterStage(cfg.output, cfg.shard, cfg.fingerprint()),
    ]
