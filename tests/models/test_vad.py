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


# The rebuilt graph sums in another order: measured max |diff| 1.1e-5 on 38 real clips
# (/usr/share/sounds, the demo corpus), 1.4e-6 on the espeak clip. The stock graph stays at 1e-6.
ATOL = {"stock": 1e-6, "gemm": 2e-5}


@pytest.mark.parametrize("graph", ["stock", "gemm"])
def test_probabilities_match_silero_sequence_front_end(espeak_clip, graph):
    from silero_vad.sequence_vad import SileroVADSequence

    audio = np.concatenate([espeak_clip[0], noise(0.7, -30, seed=2)])[:-37]  # not a frame multiple
    reference = SileroVADSequence(vad_module.default_model_path()).audio_forward(audio)
    small_blocks = SileroVad(max_frames=7, graph=graph).speech_probabilities(audio)
    assert small_blocks.dtype == np.float32
    assert small_blocks.shape == (-(-audio.size // FRAME_SAMPLES),)
    np.testing.assert_allclose(small_blocks, reference, rtol=0, atol=ATOL[graph])
    np.testing.assert_allclose(SileroVad(graph=graph).speech_probabilities(audio), reference, rtol=0,
                               atol=ATOL[graph])


@pytest.mark.skipif(not ALSA_CLIP.is_file(), reason=f"{ALSA_CLIP} not present")
def test_rebuilt_graph_gives_the_stock_graphs_spans_on_real_and_generated_speech(vad, espeak_clip):
    real, rate = sf.read(ALSA_CLIP, dtype="float32")
    real = resample_linear(real if real.ndim == 1 else real.mean(axis=1), rate)
    stock = SileroVad(graph="stock")
    assert vad.graph == "gemm" and vad.model_id.endswith("-gemm") and not stock.model_id.endswith("-gemm")
    for audio in (espeak_clip[0], real, np.concatenate([real, noise(3.0, -35, seed=5), espeak_clip[0]])):
        ours, theirs = vad.speech_probabilities(audio), stock.speech_probabilities(audio)
        assert 0 < np.abs(ours - theirs).max() < ATOL["gemm"]  # not the same graph, the same numbers
        a, b = speech_spans(ours, audio, VadConfig()), speech_spans(theirs, audio, VadConfig())
        np.testing.assert_array_equal(a.starts_s, b.starts_s)
        np.testing.assert_array_equal(a.ends_s, b.ends_s)
        assert a.speech_ratio == b.speech_ratio


def test_a_graph_laid_out_otherwise_is_refused_by_name(tmp_path):
    import onnx

    from audiomill.models.vad_graph import UnexpectedGraphError, gemm_model_bytes

    model = onnx.load(vad_module.default_model_path())
    conv = next(node for node in model.graph.node if node.name == "/encoder.1/Conv")
    next(a for a in conv.attribute if a.name == "strides").ints[:] = [1]
    changed = tmp_path / "silero_vad_16k_sequence.onnx"
    onnx.save(model, str(changed))
    with pytest.raises(UnexpectedGraphError, match="/encoder.1/Conv.*vad.graph=stock"):
        gemm_model_bytes(str(changed))


def test_unknown_graph_is_refused():
    with pytest.raises(ValueError, match="graph must be one of"):
        SileroVad(graph="fast")


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


def test_the_rebuilt_graph_is_cached_once_and_a_damaged_copy_is_rebuilt(tmp_path, espeak_clip):
    from audiomill.models.vad_graph import cached_gemm_model

    first = SileroVad(cache_dir=str(tmp_path))
    cached = Path(cached_gemm_model(first.model_path, str(tmp_path)))
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temp files left behind
    built_at = cached.stat().st_mtime_ns
    expected = first.speech_probabilities(espeak_clip[0])
    np.testing.assert_array_equal(SileroVad(cache_dir=str(tmp_path)).speech_probabilities(espeak_clip[0]), expected)
    assert cached.stat().st_mtime_ns == built_at  # read, not built again
    cached.write_bytes(cached.read_bytes()[:1000])  # cut short, as a full disk would leave it
    np.testing.assert_array_equal(SileroVad(cache_dir=str(tmp_path)).speech_probabilities(espeak_clip[0]), expected)
    assert cached.stat().st_size > 1000


def test_a_cache_dir_that_cannot_be_written_still_runs_the_rebuilt_graph(tmp_path, espeak_clip):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("a file where the cache dir would be")
    probs = SileroVad(cache_dir=str(blocked / "models")).speech_probabilities(espeak_clip[0])
    np.testing.assert_array_equal(probs, SileroVad(cache_dir=str(tmp_path / "ok")).speech_probabilities(espeak_clip[0]))
