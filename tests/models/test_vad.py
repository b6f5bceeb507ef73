"""SileroVad against silero-vad's own sequence front-end and on real speech, noise and silence."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiomill.config import VadConfig
from audiomill.models import vad as vad_module
from audiomill.models.vad import FRAME_SAMPLES, SAMPLE_RATE, ModelNotFoundError, SileroVad
from audiomill.models.speech_spans import speech_spans

SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river bank."
LEAD_S = 1.5
ALSA_CLIP = Path("/usr/share/sounds/alsa/Front_Center.wav")


def resample_linear(audio: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Linear-interpolation resampling: crude, but enough for VAD tests."""
    count = int(round(audio.size * target / rate))
    positions = np.arange(count) * (rate / target)
    return np.interp(positions, np.arange(audio.size), audio).astype(np.float32)


def noise(duration_s: float, level_dbfs: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (10 ** (level_dbfs / 20) * rng.standard_normal(int(duration_s * SAMPLE_RATE))).astype(np.float32)


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


@pytest.fixture(scope="module")
def espeak_clip() -> tuple[np.ndarray, float, float]:
    """Speech padded with 1.5 s of -60 dBFS noise each side, and its true (start_s, end_s)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = subprocess.run(["espeak-ng", "-v", "en", "--stdout", SENTENCE],
                         capture_output=True, check=True).stdout
    speech, rate = sf.read(io.BytesIO(wav), dtype="float32")
    speech = resample_linear(speech, rate)
    voiced = np.flatnonzero(np.abs(speech) > 1e-3)
    speech = speech[voiced[0]:voiced[-1] + 1]
    silence = np.zeros(int(LEAD_S * SAMPLE_RATE), dtype=np.float32)
    audio = np.concatenate([silence, speech, silence])
    audio += noise(audio.size / SAMPLE_RATE + 1, -60, seed=1)[:audio.size]
    return audio, LEAD_S, LEAD_S + speech.size / SAMPLE_RATE


def test_probabilities_match_silero_sequence_front_end(vad, espeak_clip):
    from silero_vad.sequence_vad import SileroVADSequence

    audio = np.concatenate([espeak_clip[0], noise(0.7, -30, seed=2)])[:-37]  # not a frame multiple
    reference = SileroVADSequence(vad.model_path).audio_forward(audio)
    small_blocks = SileroVad(max_frames=7).speech_probabilities(audio)
    assert small_blocks.dtype == np.float32
    assert small_blocks.shape == (-(-audio.size // FRAME_SAMPLES),)
    np.testing.assert_allclose(small_blocks, reference, rtol=0, atol=1e-6)
    np.testing.assert_allclose(vad.speech_probabilities(audio), reference, rtol=0, atol=1e-6)


def test_batch_matches_single_calls_in_order(vad, espeak_clip):
    sources = [espeak_clip[0], noise(2.0, -30, seed=3), np.zeros(0, dtype=np.float32),
               espeak_clip[0][:1000]]
    batch = vad.speech_probabilities_batch(sources)
    assert [p.size for p in batch] == [-(-s.size // FRAME_SAMPLES) for s in sources]
    for probs, source in zip(batch, sources):
        np.testing.assert_array_equal(probs, vad.speech_probabilities(source))


def test_espeak_speech_is_found_where_it_is(vad, espeak_clip):
    audio, true_start, true_end = espeak_clip
    result = speech_spans(vad.speech_probabilities(audio), audio, VadConfig())
    assert result.starts_s.size >= 1
    assert result.starts_s[0] >= true_start - 0.35 and result.ends_s[-1] <= true_end + 0.35
    overlap = np.clip(np.minimum(result.ends_s, true_end) - np.maximum(result.starts_s, true_start),
                      0, None).sum()
    assert overlap >= 0.8 * (true_end - true_start)
    assert result.speech_ratio > 0.3


@pytest.mark.parametrize("kind", ["white_noise_-30dBFS", "digital_silence"])
def test_noise_and_silence_give_no_spans(vad, kind):
    audio = noise(10.0, -30, seed=4) if kind.startswith("white") else np.zeros(10 * SAMPLE_RATE, np.float32)
    result = speech_spans(vad.speech_probabilities(audio), audio, VadConfig())
    assert result.starts_s.size == 0
    assert result.speech_ratio < 0.05


@pytest.mark.skipif(not ALSA_CLIP.is_file(), reason=f"{ALSA_CLIP} not present")
def test_real_human_clip_has_speech(vad):
    audio, rate = sf.read(ALSA_CLIP, dtype="float32")
    audio = resample_linear(audio if audio.ndim == 1 else audio.mean(axis=1), rate)
    result = speech_spans(vad.speech_probabilities(audio), audio, VadConfig())
    assert result.starts_s.size >= 1


def test_rejects_multichannel_audio(vad):
    with pytest.raises(ValueError, match="1-D"):
        vad.speech_probabilities(np.zeros((2, 1600), dtype=np.float32))


def test_missing_model_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "silero_vad_16k_sequence.onnx"
    with pytest.raises(ModelNotFoundError, match="pip install silero-vad") as info:
        SileroVad(model_path=str(missing))
    assert str(missing) in str(info.value)


def test_missing_package_names_the_expected_file(monkeypatch):
    monkeypatch.setattr(vad_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="silero_vad/data/silero_vad_16k_sequence.onnx"):
        SileroVad()


def test_default_path_is_the_shipped_sequence_model():
    path = Path(vad_module.default_model_path())
    assert path.name == "silero_vad_16k_sequence.onnx" and path.is_file()
