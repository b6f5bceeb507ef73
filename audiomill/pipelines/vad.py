"""VAD stage: silero-vad probabilities per source, turned into segment spans (seconds)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audiomill import schema
from audiomill.config import VadConfig
from audiomill.models.vad import FRAME_S, SileroVad
from audiomill.pipelines.base import Resources, Stage, with_rejects
from audiomill.pipelines.quality import pcm_views
from audiomill.pipelines.speech_spans import speech_spans
from audiomill.schema import RejectReason


class VadStage(Stage):
    """Adds ``vad_starts_s``/``vad_ends_s`` lists per source; a source with none is ``no_speech``."""

    name = schema.Stage.VAD.value
    resources = Resources(num_cpus=1.0, actor=True)

    def __init__(self, cfg: VadConfig, model_path: str | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.model_path = model_path
        self.model: SileroVad | None = None

    def setup(self) -> None:
        self.model = SileroVad(self.model_path, threads=1)

    def process(self, table: pa.Table) -> pa.Table:
        assert self.model is not None, "setup() not called"
        audios = pcm_views(table[schema.AUDIO])  # views of the Arrow buffer, not copies
        all_probs = self.model.speech_probabilities_batch(audios)
        starts, ends, ratios, segment_ratios, reasons, details = [], [], [], [], [], []
        for audio, probs in zip(audios, all_probs):
            spans = speech_spans(probs, audio, self.cfg, frame_s=FRAME_S)
            starts.append(spans.starts_s.tolist())
            ends.append(spans.ends_s.tolist())
            ratios.append(spans.speech_ratio)
            segment_ratios.append(spans.segment_speech_ratios.tolist())
            empty = spans.starts_s.size == 0
            reasons.append(RejectReason.NO_SPEECH.value if empty else None)
            details.append(f"speech ratio {spans.speech_ratio:.3f}, {spans.dropped_s:.2f} s of speech "
                           f"in pieces < {self.cfg.min_segment_s} s" if empty else None)
        seconds = pa.list_(pa.float64())
        table = table.append_column(schema.VAD_STARTS_S, pa.array(starts, seconds))
        table = table.append_column(schema.VAD_ENDS_S, pa.array(ends, seconds))
        table = table.append_column(schema.VAD_SPEECH_RATIO, pa.array(ratios, pa.float64()))
        table = table.append_column(schema.VAD_SEGMENT_SPEECH_RATIOS, pa.array(segment_ratios, seconds))
        return with_rejects(table, self.name, reasons, details)
