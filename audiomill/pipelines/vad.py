"""VAD stage: silero-vad probabilities per source, turned into segment spans (seconds)."""

from __future__ import annotations

import pyarrow as pa

from audiomill import schema
from audiomill.config import MODEL_CACHE_DIR, VadConfig
from audiomill.models.vad import FRAME_S, SileroVad
from audiomill.pipelines.base import Resources, Stage, with_rejects
from audiomill.models.speech_spans import SpanResult, speech_spans
from audiomill.pipelines.quality import pcm_views
from audiomill.schema import RejectReason


class VadStage(Stage):
    """Adds ``vad_starts_s``/``vad_ends_s`` lists per source.

    A source with no span is rejected ``no_speech`` when VAD found (almost) no speech, and
    ``speech_too_short`` when it found speech but every piece was under ``vad.min_segment_s``,
    so a user tuning thresholds sees which knob dropped it.
    """

    name = schema.StageName.VAD.value
    resources = Resources(num_cpus=1.0)
    requires = frozenset({schema.AUDIO})
    adds = frozenset({schema.VAD_STARTS_S, schema.VAD_ENDS_S, schema.VAD_SPEECH_RATIO,
                      schema.VAD_SEGMENT_SPEECH_RATIOS})

    def __init__(self, cfg: VadConfig, model_path: str | None = None, cache_dir: str = MODEL_CACHE_DIR) -> None:
        super().__init__()
        self.cfg = cfg
        self.model_path = model_path
        self.cache_dir = cache_dir
        self.model: SileroVad | None = None

    def setup(self) -> None:
        self.model = SileroVad(self.model_path, threads=1, graph=self.cfg.graph, cache_dir=self.cache_dir)

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
            reason, detail = _empty_reason(spans, self.cfg)
            reasons.append(reason)
            details.append(detail)
        seconds = pa.list_(pa.float64())
        table = table.append_column(schema.VAD_STARTS_S, pa.array(starts, seconds))
        table = table.append_column(schema.VAD_ENDS_S, pa.array(ends, seconds))
        table = table.append_column(schema.VAD_SPEECH_RATIO, pa.array(ratios, pa.float64()))
        table = table.append_column(schema.VAD_SEGMENT_SPEECH_RATIOS, pa.array(segment_ratios, seconds))
        return with_rejects(table, self.name, reasons, details)


def _empty_reason(spans: SpanResult, cfg: VadConfig) -> tuple[str | None, str | None]:
    """Reject reason and detail of a source without segments; (None, None) when it has some.

    Speech counts as found when at least ``cfg.min_speech_s`` seconds of it (after hysteresis)
    fell outside every final segment: shorter blips are what noise and clicks give.
    """
    if spans.starts_s.size:
        return None, None
    detail = (f"speech ratio {spans.speech_ratio:.3f}, {spans.dropped_s:.2f} s of speech "
              f"in pieces < {cfg.min_segment_s} s")
    if spans.dropped_s >= max(cfg.min_speech_s, FRAME_S) - 1e-9:
        return RejectReason.SPEECH_TOO_SHORT.value, detail + " (vad.min_segment_s)"
    return RejectReason.NO_SPEECH.value, detail
