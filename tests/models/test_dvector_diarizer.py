"""The d-vector default diarizer: same-gender voices, cuts inside one VAD span, a real recording.

Seeds 500-501 calibrated the threshold (``benchmarks/diarization.py --calibrate``); the tests use
other seeds. Bounds below are measured (2 cores, 2026-12-02) with a margin.
"""

from __future__ import annotations

import pytest

from audiomill.models.diarization import FallbackDiarizer
from audiomill.models.dvector_diarizer import DVECTOR_VERSION, DvectorDiarizer, DvectorOptions
from audiomill.testing.mixtures import (Conversation, conversation, diarization_error_rate,
                                        longest_foreign_stretch)
from audiomill.testing.real_conversation import pyannote_sample

MALE_PAIR = ("en+m3", "en+m2")
FEMALE_PAIR = ("en+f3", "en+f5")


def _reference(conv: Conversation) -> list[tuple[float, float, str]]:
    return [(t.start_s, t.end_s, t.speaker) for t in conv.turns]


def _hypothesis(diarizer, conv: Conversation, spans: list[tuple[float, float]]
                ) -> list[tuple[float, float, str]]:
    return [(t.start_s, t.end_s, str(t.speaker)) for t in diarizer.diarize(conv.audio, spans)]


def _oracle_spans(conv: Conversation) -> list[tuple[float, float]]:
    return [(t.start_s - 0.1, t.end_s + 0.1) for t in conv.turns]


@pytest.fixture(scope="module")
def diarizer() -> DvectorDiarizer:
    return DvectorDiarizer()


@pytest.mark.parametrize("voices", [MALE_PAIR, FEMALE_PAIR], ids=["male", "female"])
def test_same_gender_pair_is_two_speakers(diarizer: DvectorDiarizer, voices: tuple[str, str]):
    """Measured, seed 0, oracle spans: spectral fallback DER 0.486 (one speaker) for both pairs;
    d-vectors 0.000 (two speakers)."""
    conv = conversation(2, num_turns=8, seed=0, voices=voices)
    old = diarization_error_rate(_reference(conv), _hypothesis(FallbackDiarizer(), conv, _oracle_spans(conv)))
    new_hyp = _hypothesis(diarizer, conv, _oracle_spans(conv))
    assert old > 0.3
    assert diarization_error_rate(_reference(conv), new_hyp) < 0.05
    assert len({h[2] for h in new_hyp}) == 2


def test_turns_split_inside_one_continuous_span(diarizer: DvectorDiarizer):
    """Turns 0.05-0.12 s apart, given as ONE span (no pause long enough to split it first).

    Measured, seed 1: spectral fallback one 27 s turn (DER 0.471, 4.0 s of the other voice in a
    turn); d-vectors DER 0.000, every change found within 0.25 s (longest foreign stretch 0.22 s).
    """
    conv = conversation(2, num_turns=8, seed=1, voices=MALE_PAIR, gap_s=(0.05, 0.12))
    one_span = [(conv.turns[0].start_s - 0.1, conv.turns[-1].end_s + 0.1)]
    hypothesis = _hypothesis(diarizer, conv, one_span)
    assert len(hypothesis) >= len(conv.turns) - 1
    assert diarization_error_rate(_reference(conv), hypothesis) < 0.05
    assert longest_foreign_stretch(_reference(conv), hypothesis) < 0.5
    old = _hypothesis(FallbackDiarizer(), conv, one_span)
    assert longest_foreign_stretch(_reference(conv), old) > 2.0


def test_real_two_speaker_recording(diarizer: DvectorDiarizer, tmp_path_factory):
    """pyannote.audio 4.0.7's sample.wav + sample.rttm (real speech, 30 s), as silero-vad spans it
    in the clean pipeline: one span 6.68-30.0 s.

    Measured with the calibrated defaults: d-vectors 2 speakers, DER 0.114 (0.25 s collar), the
    longest stretch of the other voice inside one turn 1.36 s; the spectral fallback: one
    speaker, one 23.3 s turn (DER 0.464, 3.46 s). The threshold sits close to this recording's
    edge (0.34 finds one speaker), so this pins the calibrated value too.
    """
    conv = pyannote_sample(tmp_path_factory.mktemp("pypi-cache"))
    vad_span = [(6.684, 30.0)]
    hypothesis = _hypothesis(diarizer, conv, vad_span)
    assert len({h[2] for h in hypothesis}) == 2
    assert diarization_error_rate(_reference(conv), hypothesis) < 0.2
    assert longest_foreign_stretch(_reference(conv), hypothesis) < 2.0
    old = _hypothesis(FallbackDiarizer(), conv, vad_span)
    assert len(old) == 1 and diarization_error_rate(_reference(conv), old) > 0.4


def test_single_voice_stays_one_speaker(diarizer: DvectorDiarizer):
    for seed, voice in ((2, "en+m3"), (3, "en+f3")):
        conv = conversation(1, num_turns=8, seed=seed, voices=(voice,))
        assert {h[2] for h in _hypothesis(diarizer, conv, _oracle_spans(conv))} == {"0"}


def test_known_speaker_count_and_determinism(diarizer: DvectorDiarizer):
    conv = conversation(3, num_turns=9, seed=4, voices=("en+m3", "en+f3", "en+m7"))
    spans = _oracle_spans(conv)
    given = DvectorDiarizer(DvectorOptions(num_speakers=3))
    first, second = given.diarize(conv.audio, spans), given.diarize(conv.audio, spans)
    assert first == second
    assert {t.speaker for t in first} == {0, 1, 2} and first[0].speaker == 0
    assert all(any(a - 1e-6 <= t.start_s < t.end_s <= b + 1e-6 for a, b in spans) for t in first)
    assert diarizer.version == DVECTOR_VERSION == "resemblyzer-ahc@1"


def test_empty_and_tiny_spans(diarizer: DvectorDiarizer):
    conv = conversation(1, num_turns=2, seed=5)
    assert diarizer.diarize(conv.audio, []) == []
    assert diarizer.diarize(conv.audio, [(1.0, 1.02)]) == []
    (turn,) = diarizer.diarize(conv.audio, [(conv.turns[0].start_s, conv.turns[0].start_s + 0.3)])
    assert turn.speaker == 0


def test_config_picks_the_embedding_and_its_threshold():
    from audiomill.config import DiarizeConfig
    from audiomill.pipelines.diarize import build_diarizer

    default = build_diarizer(DiarizeConfig(enabled=True))
    assert isinstance(default, DvectorDiarizer) and default.options.threshold == DvectorOptions().threshold
    spectral = build_diarizer(DiarizeConfig(enabled=True, embedding="spectral", num_speakers=2))
    assert isinstance(spectral, FallbackDiarizer) and spectral.version == "spectral-ahc@1"
    assert spectral.options.threshold == 0.95 and spectral.options.num_speakers == 2
    assert build_diarizer(DiarizeConfig(enabled=True, threshold=0.5)).options.threshold == 0.5
