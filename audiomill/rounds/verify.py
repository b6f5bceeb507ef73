"""Verification of one label: the re-synthesis from the label against the ORIGINAL audio.

Checks (thresholds in ``RoundConfig.thresholds``), each decided from audio, never from the text:

- content: DTW distance over encoder states of original vs re-synthesis, its margin to the
  re-syntheses of other transcripts in the same batch (voice and length effects cancel), and the semantic-token
  edit distance when a tokenizer is given (a wrong transcript, spoken clearly, still disagrees
  with the original's sounds);
- speaker: P(labelled gender) from the attribute heads (speaker embedding + pooled states +
  pitch, never the words) on the original vs on the re-synthesis rendered with that gender, and
  the f0 of both (the re-synthesis is rendered at the labelled pitch); the embedding cosine is
  recorded (the default generator does not clone voices, so it gates nothing);
- rate: active speech seconds of original vs re-synthesis (rendered at the labelled rate);
- scene: SNR and decay rate (reverb) measured on both (the re-synthesis carries the labelled scene);
- round trip: the understanding model on the re-synthesis gives back the transcript and the
  rendered attribute fields; P(labelled gender) on the re-synthesis. Recorded always; it rejects
  only with ``roundtrip_gates`` (measured to cost more correct labels than it catches errors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audiomill import schema
from audiomill.annotation import Annotation, CLASSES
from audiomill.models.understanding.model import ClipFeatures
from audiomill.models.understanding.speaker import cosine
from audiomill.rounds.config import VerifyThresholds
from audiomill.rounds.content import state_dtw_distance, token_edit_distance, word_error_rate
from audiomill.schema import VerifyReason

ROUNDTRIP_FIELDS = (schema.ANN_GENDER, schema.ANN_PITCH_BAND, schema.ANN_SCENE, schema.ANN_NOISE_TYPE,
                    schema.ANN_SNR_BAND)
"""Fields the generator renders and the understanding model can hear back (age/style are not
rendered faithfully by the embedded engines, rate is checked by duration)."""
ACCEPT, REJECT = "accept", "reject"


@dataclass(frozen=True)
class Side:
    """One side of the comparison as the understanding model heard it."""

    features: ClipFeatures
    probs: dict[str, np.ndarray] = field(default_factory=dict)  # head field -> class probabilities
    tokens: np.ndarray | None = None  # semantic tokens (None without a tokenizer)
    annotation: Annotation | None = None  # the understanding model's reading (re-synthesis side)


@dataclass(frozen=True)
class Verdict:
    """Every score, each check's outcome, the decision and its reasons (one verify.parquet row)."""

    scores: dict[str, float | None]
    checks: dict[str, bool]
    reasons: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        return not self.reasons

    def row(self) -> dict[str, Any]:
        return {**self.scores, **self.checks, schema.VER_DECISION: ACCEPT if self.accepted else REJECT,
                schema.VER_REASONS: ",".join(self.reasons)}


def _p(probs: dict[str, np.ndarray], name: str, value: str | None) -> float | None:
    if name not in probs or value not in CLASSES[name]:
        return None
    return float(probs[name][CLASSES[name].index(value)])


def _semitones(a: float, b: float) -> float | None:
    return abs(12 * math.log2(a / b)) if a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b) else None


def _log_ratio(a: float, b: float) -> float | None:
    return abs(math.log10(a / b)) if a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b) else None


def scores(label: Annotation, original: Side, synth: Side, t: VerifyThresholds,
           foils: list[Side] = ()) -> dict[str, float | None]:
    """Every score of one clip. ``foils``: re-syntheses of *other* transcripts from the same batch;
    the content margin is how much closer the own re-synthesis is than their median."""
    o, s = original.features.measures, synth.features.measures
    cap = lambda v: min(v, t.snr_cap_db) if math.isfinite(v) else t.snr_cap_db  # noqa: E731
    gender = label.value(schema.ANN_GENDER)
    rendered = [f for f in ROUNDTRIP_FIELDS if label.value(f) is not None]
    agree = (sum(synth.annotation.value(f) == label.value(f) for f in rendered) / len(rendered)
             if synth.annotation is not None and rendered else None)
    token_dist = (token_edit_distance(original.tokens, synth.tokens)
                  if original.tokens is not None and synth.tokens is not None else None)
    own = state_dtw_distance(original.features.states, synth.features.states)
    foil_dists = [state_dtw_distance(original.features.states, f.features.states) for f in foils]
    return {
        schema.VER_CONTENT_STATE_DIST: own,
        schema.VER_CONTENT_MARGIN: float(np.median(foil_dists)) - own if foil_dists else None,
        schema.VER_CONTENT_TOKEN_DIST: token_dist,
        schema.VER_ROUNDTRIP_WER: (word_error_rate(label.value(schema.ANN_TRANSCRIPT) or "",
                                                   synth.annotation.value(schema.ANN_TRANSCRIPT) or "")
                                   if synth.annotation is not None else None),
        schema.VER_ROUNDTRIP_AGREE: agree,
        schema.VER_SPEAKER_COS: cosine(original.features.embedding, synth.features.embedding),
        schema.VER_GENDER_P_ORIG: _p(original.probs, schema.ANN_GENDER, gender),
        schema.VER_GENDER_P_SYNTH: _p(synth.probs, schema.ANN_GENDER, gender),
        schema.VER_PITCH_ORIG_HZ: o.pitch.median_hz if math.isfinite(o.pitch.median_hz) else None,
        schema.VER_PITCH_SYNTH_HZ: s.pitch.median_hz if math.isfinite(s.pitch.median_hz) else None,
        schema.VER_PITCH_DIFF_ST: _semitones(o.pitch.median_hz, s.pitch.median_hz),
        schema.VER_RATE_RATIO: o.active_s / s.active_s if s.active_s > 0 else None,
        schema.VER_ACTIVE_ORIG_S: o.active_s,
        schema.VER_SNR_ORIG_DB: cap(o.snr_db),
        schema.VER_SNR_SYNTH_DB: cap(s.snr_db),
        schema.VER_DECAY_ORIG: o.decay_db_s if math.isfinite(o.decay_db_s) else None,
        schema.VER_DECAY_SYNTH: s.decay_db_s if math.isfinite(s.decay_db_s) else None,
    }


def _at_most(value: float | None, limit: float) -> bool:
    return value is None or value <= limit


def decide(sc: dict[str, float | None], t: VerifyThresholds) -> Verdict:
    """Apply the thresholds to the scores; a missing score (None) never rejects by itself."""
    margin = sc[schema.VER_CONTENT_MARGIN]
    content = (sc[schema.VER_CONTENT_STATE_DIST] <= t.content_max_state_dist
               and (margin is None or margin >= t.content_min_margin)
               and _at_most(sc[schema.VER_CONTENT_TOKEN_DIST], t.content_max_token_dist))
    p_orig, p_synth = sc[schema.VER_GENDER_P_ORIG], sc[schema.VER_GENDER_P_SYNTH]
    gap = abs(p_orig - p_synth) if p_orig is not None and p_synth is not None else None
    speaker = _at_most(gap, t.gender_max_gap) and _at_most(sc[schema.VER_PITCH_DIFF_ST], t.pitch_max_diff_st)
    ratio = sc[schema.VER_RATE_RATIO]
    rate = ratio is None or 1 / t.rate_max_ratio <= ratio <= t.rate_max_ratio
    decay = _log_ratio(sc[schema.VER_DECAY_ORIG] or math.nan, sc[schema.VER_DECAY_SYNTH] or math.nan)
    if (sc[schema.VER_ACTIVE_ORIG_S] or 0.0) < t.decay_min_active_s:
        decay = None  # too little speech for a decay estimate
    scene = (abs(sc[schema.VER_SNR_ORIG_DB] - sc[schema.VER_SNR_SYNTH_DB]) <= t.snr_max_diff_db
             and _at_most(decay, t.decay_max_log10_ratio))
    agree = sc[schema.VER_ROUNDTRIP_AGREE]
    roundtrip = (_at_most(sc[schema.VER_ROUNDTRIP_WER], t.roundtrip_max_wer)
                 and (agree is None or agree >= t.roundtrip_min_agree)
                 and (p_synth is None or p_synth >= t.gender_min_p_synth))
    reasons = [reason.value for ok, reason in ((content, VerifyReason.CONTENT_MISMATCH),
                                                (speaker, VerifyReason.SPEAKER_MISMATCH),
                                                (rate or not content, VerifyReason.RATE_MISMATCH),
                                                (scene, VerifyReason.SCENE_MISMATCH),
                                                (roundtrip or not t.roundtrip_gates,
                                                 VerifyReason.ROUNDTRIP_FAILED)) if not ok]
    checks = {schema.VER_CONTENT_OK: content, schema.VER_SPEAKER_OK: speaker and rate,
              schema.VER_SCENE_OK: scene, schema.VER_ROUNDTRIP_OK: roundtrip}
    return Verdict(sc, checks, tuple(reasons))


def verify(label: Annotation, original: Side, synth: Side, t: VerifyThresholds,
           foils: list[Side] = ()) -> Verdict:
    return decide(scores(label, original, synth, t, foils), t)


def failed(reason: VerifyReason, detail_scores: dict[str, float | None] | None = None) -> Verdict:
    """A verdict for a clip that could not be compared (unreadable original, no synthesis)."""
    empty = {name: None for name in VERIFY_SCORE_COLUMNS} | (detail_scores or {})
    checks = {schema.VER_CONTENT_OK: False, schema.VER_SPEAKER_OK: False, schema.VER_SCENE_OK: False,
              schema.VER_ROUNDTRIP_OK: False}
    return Verdict(empty, checks, (reason.value,))


VERIFY_SCORE_COLUMNS = (
    schema.VER_CONTENT_STATE_DIST, schema.VER_CONTENT_MARGIN, schema.VER_CONTENT_TOKEN_DIST, schema.VER_ROUNDTRIP_WER,
    schema.VER_ROUNDTRIP_AGREE, schema.VER_SPEAKER_COS, schema.VER_GENDER_P_ORIG, schema.VER_GENDER_P_SYNTH,
    schema.VER_PITCH_ORIG_HZ, schema.VER_PITCH_SYNTH_HZ, schema.VER_PITCH_DIFF_ST, schema.VER_RATE_RATIO, schema.VER_ACTIVE_ORIG_S,
    schema.VER_SNR_ORIG_DB, schema.VER_SNR_SYNTH_DB, schema.VER_DECAY_ORIG, schema.VER_DECAY_SYNTH)
