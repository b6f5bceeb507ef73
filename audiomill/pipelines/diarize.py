"""Diarize stage: per source, after VAD and before segment, cut VAD spans at speaker changes.

Adds per-span ``diar_speakers``/``diar_overlaps`` lists (``segment`` turns them into per-segment
``diar_speaker``/``diar_overlap``) and per-source ``diar_num_speakers``/``diar_model``. Span lists
VAD made (starts, ends, per-span speech ratios) are rewritten to the cut spans; a cut piece keeps
its parent span's speech ratio.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audiomill import schema
from audiomill.config import DiarizeConfig
from audiomill.models.diarization import FallbackDiarizer, FallbackOptions, split_spans_at_turns
from audiomill.models.dvector_diarizer import DvectorDiarizer, DvectorOptions
from audiomill.models.pyannote_backend import PyannoteDiarizer
from audiomill.pipelines.base import Resources, Stage, with_rejects
from audiomill.schema import RejectReason


Diarizer = DvectorDiarizer | FallbackDiarizer | PyannoteDiarizer


def build_diarizer(cfg: DiarizeConfig) -> Diarizer:
    """The configured backend; pyannote raises ``DiarizerUnavailableError`` when it cannot import."""
    if cfg.backend == "pyannote":
        return PyannoteDiarizer(cfg.pipeline_dir, device=cfg.device, num_speakers=cfg.num_speakers,
                                max_speakers=cfg.max_speakers)
    options_cls = FallbackOptions if cfg.embedding == "spectral" else DvectorOptions
    chosen = {"num_speakers": cfg.num_speakers, "max_speakers": cfg.max_speakers}
    if cfg.threshold is not None:
        chosen["threshold"] = cfg.threshold
    options = options_cls(**chosen)
    return FallbackDiarizer(options) if cfg.embedding == "spectral" else DvectorDiarizer(options)


class DiarizeStage(Stage):
    """Source rows with VAD spans in; the same rows with spans cut per speaker out."""

    name = schema.StageName.DIARIZE.value
    resources = Resources(num_cpus=1.0)
    requires = frozenset({schema.AUDIO, schema.VAD_STARTS_S, schema.VAD_ENDS_S})
    adds = frozenset({*schema.SPAN_LIST_COLUMNS, schema.DIAR_NUM_SPEAKERS, schema.DIAR_MODEL})

    def __init__(self, cfg: DiarizeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.diarizer: Diarizer | None = None

    def setup(self) -> None:
        self.diarizer = build_diarizer(self.cfg)

    def process(self, table: pa.Table) -> pa.Table:
        assert self.diarizer is not None, "setup() not called"
        columns: dict[str, list] = {name: [] for name in (
            schema.VAD_STARTS_S, schema.VAD_ENDS_S, schema.VAD_SEGMENT_SPEECH_RATIOS,
            schema.DIAR_SPEAKERS, schema.DIAR_OVERLAPS, schema.DIAR_NUM_SPEAKERS)}
        reasons: list[str | None] = []
        details: list[str | None] = []
        rows = zip(table[schema.SOURCE_ID].to_pylist(), table[schema.AUDIO].to_pylist(),
                   table[schema.VAD_STARTS_S].to_pylist(), table[schema.VAD_ENDS_S].to_pylist(),
                   table[schema.VAD_SEGMENT_SPEECH_RATIOS].to_pylist())
        for source_id, buf, starts, ends, ratios in rows:
            audio = np.frombuffer(buf, dtype=np.float32)
            turns = self.diarizer.diarize(audio, list(zip(starts, ends)))
            spans = split_spans_at_turns(starts, ends, turns, self.cfg.min_turn_s)
            keep = [i for i, o in enumerate(spans.overlaps) if not (self.cfg.drop_overlap and o)]
            columns[schema.VAD_STARTS_S].append([spans.starts_s[i] for i in keep])
            columns[schema.VAD_ENDS_S].append([spans.ends_s[i] for i in keep])
            columns[schema.VAD_SEGMENT_SPEECH_RATIOS].append([ratios[spans.parents[i]] for i in keep])
            columns[schema.DIAR_SPEAKERS].append([f"{source_id}:S{spans.speakers[i]}" for i in keep])
            columns[schema.DIAR_OVERLAPS].append([spans.overlaps[i] for i in keep])
            columns[schema.DIAR_NUM_SPEAKERS].append(len(set(spans.speakers)))
            dropped = not keep and bool(spans.starts_s)
            reasons.append(RejectReason.SPEECH_OVERLAP.value if dropped else None)
            details.append(f"all {len(spans.starts_s)} speech spans flagged as overlapped speech"
                           if dropped else None)
        types = {schema.DIAR_SPEAKERS: pa.list_(pa.string()), schema.DIAR_OVERLAPS: pa.list_(pa.bool_()),
                 schema.DIAR_NUM_SPEAKERS: pa.int32()}
        for name, values in columns.items():
            array = pa.array(values, types.get(name, pa.list_(pa.float64())))
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, array)
            else:
                table = table.append_column(name, array)
        model = pa.array([self.diarizer.version] * table.num_rows, pa.string())
        table = table.append_column(schema.DIAR_MODEL, model)
        return with_rejects(table, self.name, reasons, details)
