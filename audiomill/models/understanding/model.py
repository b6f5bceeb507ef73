"""The understanding model: listens to a clip and writes its structured description.

- transcript + language: faster-whisper (a local CTranslate2 directory; never downloaded);
- gender, age band, style, scene, noise type, SNR band: the trained ``AttributeHeads`` over
  pooled Whisper encoder states + speaker embedding + acoustic measures (no words: the heads
  never see the transcript, so attributes are not read from what is said);
- pitch band (median f0), speaking-rate band (words per active second) and the SNR estimate are
  measured and banded by rule; their confidence grows with the distance to the band edge.

Without heads (before round 0 trains them) the learned fields are empty with confidence 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiomill import annotation as ann
from audiomill import schema
from audiomill.annotation import Annotation, FieldValue
from audiomill.models.asr import WhisperAsr, WhisperOptions
from audiomill.models.understanding.heads import AttributeHeads
from audiomill.models.understanding.measures import Measures, measure
from audiomill.models.understanding.speaker import speaker_embedding
from audiomill.models.understanding.whisper_states import WhisperStates, pooled

logger = logging.getLogger(__name__)
RULE_MODEL = "measure-v1"  # producer of rule-banded fields (pitch, rate)


@dataclass(frozen=True)
class ClipFeatures:
    """Everything the heads and the verifier read from one clip."""

    states: np.ndarray  # (frames, d_model) Whisper encoder states, 50 fps
    embedding: np.ndarray  # (256,) speaker embedding
    measures: Measures

    def vector(self) -> np.ndarray:
        return np.concatenate([pooled(self.states), self.embedding, self.measures.vector()])


@dataclass(frozen=True)
class Heard:
    """One clip as the model heard it: features, transcript, language."""

    features: ClipFeatures
    transcript: str
    transcript_conf: float
    language: str
    language_conf: float


class UnderstandingModel:
    """Whisper + attribute heads. ``asr_id``/``heads_id`` are the versions recorded per column."""

    def __init__(self, asr_dir: str | Path, asr_id: str, heads: AttributeHeads | None = None,
                 heads_id: str = "", cpu_threads: int = 1, beam_size: int = 1) -> None:
        self.asr = WhisperAsr(asr_dir, cpu_threads=cpu_threads)
        self.states = WhisperStates(self.asr.model)
        self.asr_id, self.heads, self.heads_id = asr_id, heads, heads_id
        self.options = WhisperOptions(beam_size=beam_size, batch_size=8)

    def features(self, clips: Sequence[np.ndarray]) -> list[ClipFeatures]:
        states = self.states.encoder_states_batch(clips)
        return [ClipFeatures(s, speaker_embedding(c), measure(c)) for s, c in zip(states, clips)]

    def hear(self, clips: Sequence[np.ndarray]) -> list[Heard]:
        clips = [np.asarray(c, dtype=np.float32) for c in clips]
        languages = self.asr.detect_languages(clips)
        out = []
        features = self.features(clips)
        by_language: dict[str, list[int]] = {}
        for i, guess in enumerate(languages):
            by_language.setdefault(guess.language, []).append(i)
        transcripts = [None] * len(clips)
        for language, indices in sorted(by_language.items()):
            for i, result in zip(indices, self.asr.transcribe([clips[i] for i in indices], language, self.options)):
                transcripts[i] = result
        for feats, guess, result in zip(features, languages, transcripts):
            text_conf = math.exp(result.avg_logprob) if math.isfinite(result.avg_logprob) else 0.0
            lang_conf = guess.probability if guess.probability is not None else text_conf
            out.append(Heard(feats, result.text, round(text_conf, 6), guess.language, round(lang_conf, 6)))
        return out

    def annotate(self, keys: Sequence[str], clips: Sequence[np.ndarray]) -> list[Annotation]:
        heard = self.hear(clips)
        return [self.describe(key, h) for key, h in zip(keys, heard)]

    def describe(self, key: str, heard: Heard) -> Annotation:
        """The annotation of one heard clip (heads + rules)."""
        m = heard.features.measures
        fields = {
            schema.ANN_TRANSCRIPT: FieldValue(heard.transcript, heard.transcript_conf, self.asr_id),
            schema.ANN_LANGUAGE: FieldValue(heard.language, heard.language_conf, self.asr_id),
            schema.ANN_PITCH_BAND: _rule_field(m.pitch.median_hz, ann.PITCH_EDGES_HZ, ann.PITCH_BANDS, 15.0),
            schema.ANN_RATE_BAND: _rule_field(_words_per_s(heard.transcript, m), ann.RATE_EDGES_WPS,
                                              ann.RATE_BANDS, 0.4),
        }
        fields.update(self._learned(heard.features, m))
        return Annotation(key, fields)

    def _learned(self, features: ClipFeatures, m: Measures) -> dict[str, FieldValue]:
        snr = round(m.snr_db, 3) if math.isfinite(m.snr_db) else None
        if self.heads is None:
            empty = {f: FieldValue(None, 0.0, "") for f in _HEAD_FIELDS}
            empty[schema.ANN_SNR_BAND] = FieldValue(None, 0.0, "", snr)
            return empty
        probs = self.heads.predict(features.vector()[None, :])
        out = {}
        for name in _HEAD_FIELDS:
            p = probs[name][0]
            best = int(np.argmax(p))
            measure_value = snr if name == schema.ANN_SNR_BAND else None
            out[name] = FieldValue(ann.CLASSES[name][best], round(float(p[best]), 6), self.heads_id, measure_value)
        return out

    def predict_proba(self, features: Sequence[ClipFeatures]) -> dict[str, np.ndarray]:
        """Head probabilities for many clips (verification reads P(label) on both sides)."""
        if self.heads is None:
            raise RuntimeError("no attribute heads loaded: train them first (round 0)")
        return self.heads.predict(np.stack([f.vector() for f in features]))


_HEAD_FIELDS = (schema.ANN_GENDER, schema.ANN_AGE_BAND, schema.ANN_STYLE, schema.ANN_SCENE,
                schema.ANN_NOISE_TYPE, schema.ANN_SNR_BAND)


def _words_per_s(text: str, m: Measures) -> float:
    words = len(text.split())
    return words / m.active_s if m.active_s > 0 and words else float("nan")


def _rule_field(value: float, edges: tuple[float, ...], names: tuple[str, ...], scale: float) -> FieldValue:
    if not math.isfinite(value):
        return FieldValue(None, 0.0, RULE_MODEL, None)
    return FieldValue(ann.band(value, edges, names), round(ann.band_confidence(value, edges, scale), 6),
                      RULE_MODEL, round(float(value), 3))
