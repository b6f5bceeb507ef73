"""VAD reject reasons say what happened: no speech at all vs speech too short to keep."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from audiomill import schema
from audiomill.config import VadConfig
from audiomill.pipelines.vad import VadStage
from audiomill.schema import SAMPLE_RATE, RejectReason
from audiomill.testing.signals import espeak, resample, silence, white_noise


def _source_table(audios: dict[str, np.ndarray]) -> pa.Table:
    return pa.table({
        schema.SOURCE_URI: list(audios),
        schema.AUDIO: pa.array([a.astype(np.float32).tobytes() for a in audios.values()],
                               pa.large_binary()),
    })


def _short_word_in_2s() -> np.ndarray:
    """A 2 s file holding one espeak word (about 0.4 s of speech) after 0.8 s of silence."""
    audio, sr = espeak("Yes.", "en")
    word = resample(audio, sr, SAMPLE_RATE)
    out = silence(2.0, SAMPLE_RATE)
    start = int(0.8 * SAMPLE_RATE)
    out[start:start + word.size] = word[: out.size - start]
    return out


@pytest.fixture(scope="module")
def vad_rows() -> dict[str, dict]:
    stage = VadStage(VadConfig())
    stage.setup()
    table = stage.process(_source_table({
        "word.wav": _short_word_in_2s(),
        "silence.wav": silence(2.0, SAMPLE_RATE),
        "noise.wav": white_noise(2.0, SAMPLE_RATE, level_dbfs=-25.0),
    }))
    return {r[schema.SOURCE_URI]: r for r in table.to_pylist()}


def test_speech_shorter_than_min_segment_is_speech_too_short(vad_rows):
    row = vad_rows["word.wav"]
    assert row[schema.REJECT_STAGE] == "vad"
    assert row[schema.REJECT_REASON] == RejectReason.SPEECH_TOO_SHORT.value
    assert "min_segment_s" in row[schema.REJECT_DETAIL]


def test_the_same_word_is_kept_when_min_segment_allows_it():
    stage = VadStage(VadConfig(min_segment_s=0.3))
    stage.setup()
    (row,) = stage.process(_source_table({"word.wav": _short_word_in_2s()})).to_pylist()
    assert row[schema.REJECT_REASON] is None and len(row[schema.VAD_STARTS_S]) == 1


def test_silence_and_noise_stay_no_speech(vad_rows):
    for name in ("silence.wav", "noise.wav"):
        assert vad_rows[name][schema.REJECT_REASON] == RejectReason.NO_SPEECH.value, name
