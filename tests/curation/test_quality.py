"""Quality metrics against signals with known answers, and the stage that adds them as columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from audiomill import schema
from audiomill.curation.quality import k_weighting_power, segment_metrics
from audiomill.pipelines.quality import QualityStage, pcm_batch
from audiomill.testing import signals

SR = schema.SAMPLE_RATE
SENTENCES = [("The quick brown fox jumps over the lazy dog near the river bank.", "en"),
             ("Please call Stella and ask her to bring these things with her.", "en-us+f5"),
             ("Heute ist das Wetter sonnig und warm.", "de+f4")]


def metrics(*segments: np.ndarray, sr: int = SR) -> dict[str, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in segments])])
    return segment_metrics(np.concatenate(segments).astype(np.float32), offsets, sr)


def one(segment: np.ndarray, name: str, sr: int = SR) -> float:
    return float(metrics(segment, sr=sr)[name][0])


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    return [signals.resample(*_espeak(text, voice)) for text, voice in SENTENCES]


def _espeak(text: str, voice: str) -> tuple[np.ndarray, int, int]:
    audio, sr = signals.espeak(text, voice)
    return audio, sr, SR


@pytest.fixture(scope="module")
def human() -> list[np.ndarray]:
    clips = [signals.read_audio(p) for p in signals.alsa_clips() if p.stem != "Noise"]
    if not clips:
        pytest.skip("alsa-utils clips not installed")
    return [signals.resample(audio, sr, SR) for audio, sr in clips]


# -- loudness ------------------------------------------------------------------------------------


def test_k_weighting_equals_the_standards_48k_biquads():
    freqs = np.array([20.0, 60.0, 100.0, 500.0, 997.0, 1500.0, 3000.0, 10_000.0, 20_000.0])
    z = np.exp(-2j * np.pi * freqs / 48_000)

    def biquad(b, a):
        return (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)

    shelf = biquad([1.53512485958697, -2.69169618940638, 1.19839281085285], [1.0, -1.69065929318241, 0.73248077421585])
    high_pass = biquad([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])
    expected_db = 10 * np.log10(np.abs(shelf * high_pass) ** 2)
    np.testing.assert_allclose(10 * np.log10(k_weighting_power(freqs, 48_000)), expected_db, atol=1e-4)


@pytest.mark.parametrize("sr, tolerance", [(48_000, 0.05), (SR, 0.2)])
def test_997hz_sine_at_minus_20_dbfs_reads_minus_20_lufs(sr, tolerance):
    assert one(signals.sine(997.0, 5.0, sr, -20.0), schema.Q_LOUDNESS_LUFS, sr) == pytest.approx(-20.0, abs=tolerance)


def test_loudness_follows_level_and_gates_out_near_silence():
    loud = signals.sine(997.0, 3.0, SR, -23.0)
    assert one(loud * np.float32(10 ** (-10 / 20)), schema.Q_LOUDNESS_LUFS) == pytest.approx(-33.0, abs=0.2)
    # a -80 dBFS tail is below the -70 LUFS absolute gate: only the 27 all-loud 400 ms blocks and
    # the 3 blocks straddling the edge (3/4, 2/4, 1/4 loud) count, so the mean power is 28.5/30
    with_tail = np.concatenate([loud, signals.sine(997.0, 3.0, SR, -80.0)])
    expected = one(loud, schema.Q_LOUDNESS_LUFS) + 10 * np.log10(28.5 / 30)
    assert one(with_tail, schema.Q_LOUDNESS_LUFS) == pytest.approx(expected, abs=0.01)
    assert np.isnan(one(signals.silence(2.0, SR), schema.Q_LOUDNESS_LUFS))


def test_loudness_agrees_with_pyloudnorm(speech):
    pyloudnorm = pytest.importorskip("pyloudnorm")
    meter = pyloudnorm.Meter(SR)
    gated = np.concatenate([speech[0], signals.sine(440.0, 2.0, SR, -45.0)])  # relative gate drops the tone
    for audio in [*speech, signals.white_noise(4.0, SR, -30.0), signals.music_like(6.0, SR), gated]:
        # whole 100 ms steps: pyloudnorm also counts a trailing partial block, BS.1770 does not
        audio = audio[: audio.size - audio.size % (SR // 10)]
        reference = meter.integrated_loudness(audio.astype(np.float64))
        # both realise the 48 kHz-defined K filter at 16 kHz; designs differ by ~0.13 dB
        assert one(audio, schema.Q_LOUDNESS_LUFS) == pytest.approx(reference, abs=0.2)


# -- SNR, silence -------------------------------------------------------------------------------


def speech_like_bursts(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic bursts (150 Hz, 12 harmonics) of 0.2-0.6 s with 0.1-0.4 s gaps; returns (audio, mask)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    tone = sum(np.sin(2 * np.pi * 150 * h * t + h) / h for h in range(1, 13))
    mask = np.zeros(n, dtype=bool)
    position = int(0.3 * SR)
    while position < n:
        length = int(rng.uniform(0.2, 0.6) * SR)
        mask[position:position + length] = True
        position += length + int(rng.uniform(0.1, 0.4) * SR)
    audio = np.where(mask, tone, 0.0)
    audio *= 0.1 / np.sqrt(np.mean(audio[mask] ** 2))  # -20 dBFS while a burst sounds
    return audio.astype(np.float32), mask


@pytest.mark.parametrize("snr_db", [5.0, 10.0, 20.0, 30.0])
def test_snr_of_bursts_in_white_noise(snr_db):
    clean, mask = speech_like_bursts(6.0)
    noise = signals.white_noise(6.0, SR, -20.0 - snr_db, seed=1)[: clean.size]
    assert one(clean + noise, schema.Q_SNR_DB) == pytest.approx(snr_db, abs=1.5)


def test_snr_of_espeak_speech_tracks_added_noise(speech):
    estimates = []
    for snr_db in (0.0, 10.0, 20.0, 30.0):
        level = 10 * np.log10(np.mean(speech[0] ** 2))
        noise = signals.white_noise(speech[0].size / SR, SR, level - snr_db, seed=2)[: speech[0].size]
        estimates.append(one(speech[0] + noise, schema.Q_SNR_DB))
    assert estimates == sorted(estimates)
    # speech power over whole-utterance average underestimates the active-speech level by a few dB
    for estimate, snr_db in zip(estimates[1:], (10.0, 20.0, 30.0)):
        assert snr_db - 1 <= estimate <= snr_db + 6
    assert one(speech[0], schema.Q_SNR_DB) > 40  # espeak writes digital silence between words


def test_stationary_noise_has_no_snr():
    assert one(signals.white_noise(3.0, SR, -30.0), schema.Q_SNR_DB) == pytest.approx(-10.0)


def test_silence_ratio_counts_frames_below_minus_60_dbfs():
    clean, _ = speech_like_bursts(2.0)
    loud = signals.white_noise(2.0, SR, -30.0)
    audio = np.concatenate([loud, signals.silence(2.0, SR), signals.white_noise(1.0, SR, -70.0)])
    assert one(audio, schema.Q_SILENCE_RATIO) == pytest.approx(0.6, abs=0.02)
    assert one(loud, schema.Q_SILENCE_RATIO) == 0.0


# -- clipping, DC --------------------------------------------------------------------------------


@pytest.mark.parametrize("clip_at", [0.3, 0.6])
def test_hard_clipped_sine_has_the_analytic_clipping_ratio(clip_at):
    amplitude = 10 ** (-6 / 20) * np.sqrt(2)  # -6 dBFS RMS sine, peak 0.708
    clipped = np.clip(signals.sine(440.0, 3.0, SR, -6.0), -clip_at, clip_at)
    expected = 1 - 2 / np.pi * np.arcsin(clip_at / amplitude)
    assert one(clipped * np.float32(0.5), schema.Q_CLIPPING_RATIO) == pytest.approx(expected, abs=0.01)


def test_clean_signals_and_full_scale_clipping(speech, human):
    for audio in [*speech, *human, signals.sine(100.0, 2.0, SR, -10.0)]:
        assert one(audio, schema.Q_CLIPPING_RATIO) < 0.001
    driven = np.clip(speech[0] * 20, -1.0, 1.0)
    assert one(driven, schema.Q_CLIPPING_RATIO) == pytest.approx(np.mean(np.abs(driven) >= 0.999), abs=0.002)
    assert one(driven, schema.Q_CLIPPING_RATIO) > 0.05


def test_dc_offset_is_the_signed_mean(speech):
    base = one(speech[0], schema.Q_DC_OFFSET_FS)
    assert abs(base) < 0.005
    assert one(speech[0] + np.float32(0.05), schema.Q_DC_OFFSET_FS) == pytest.approx(base + 0.05, abs=1e-4)
    assert one(speech[0] - np.float32(0.1), schema.Q_DC_OFFSET_FS) == pytest.approx(base - 0.1, abs=1e-4)
    # DC does not leak into the spectral metrics
    assert one(speech[0] + np.float32(0.1), schema.Q_LOUDNESS_LUFS) == pytest.approx(
        one(speech[0], schema.Q_LOUDNESS_LUFS), abs=0.05)


# -- bandwidth, music ----------------------------------------------------------------------------


def lowpassed_noise(cutoff_hz: float, seconds: float = 4.0) -> np.ndarray:
    noise = signals.white_noise(seconds, SR, -20.0, seed=3).astype(np.float64)
    spectrum = np.fft.rfft(noise)
    spectrum[np.fft.rfftfreq(noise.size, 1 / SR) > cutoff_hz] = 0
    return np.fft.irfft(spectrum, noise.size).astype(np.float32)


@pytest.mark.parametrize("cutoff_hz", [2000.0, 4000.0, 5500.0])
def test_bandwidth_of_lowpassed_noise(cutoff_hz):
    assert one(lowpassed_noise(cutoff_hz), schema.Q_BANDWIDTH_HZ) == pytest.approx(cutoff_hz, abs=200)


def test_bandwidth_flags_upsampled_narrowband_speech(speech):
    assert one(signals.white_noise(3.0, SR, -20.0), schema.Q_BANDWIDTH_HZ) >= 7800
    assert one(speech[0], schema.Q_BANDWIDTH_HZ) >= 7500
    narrowband = signals.resample(signals.resample(speech[0], SR, 8000), 8000, SR)
    assert one(narrowband, schema.Q_BANDWIDTH_HZ) == pytest.approx(4000, abs=200)


def test_music_score_separates_music_and_tones_from_speech(speech, human):
    tonal = [signals.music_like(8.0, SR, seed) for seed in range(3)] + [signals.sine(440.0, 3.0, SR)]
    speech_scores = metrics(*speech, *human)[schema.Q_MUSIC_SCORE]
    tonal_scores = metrics(*tonal)[schema.Q_MUSIC_SCORE]
    assert speech_scores.max() < 0.15, speech_scores
    assert tonal_scores.min() > 0.35, tonal_scores
    assert tonal_scores[-1] > 0.95


# -- batching ------------------------------------------------------------------------------------


def test_batch_results_equal_one_segment_at_a_time(speech):
    segments = [speech[0], signals.sine(997.0, 0.05, SR), np.zeros(0, np.float32),
                np.clip(speech[1] * 10, -1, 1), lowpassed_noise(3000.0, 1.0), speech[2] + np.float32(0.02)]
    batch = metrics(*segments)
    for i, segment in enumerate(segments):
        if segment.size == 0:
            assert all(np.isnan(values[i]) for values in batch.values())
            continue
        alone = metrics(segment)
        for name, values in batch.items():
            np.testing.assert_allclose(values[i], alone[name][0], rtol=1e-6, atol=1e-9, err_msg=name)


def test_small_chunks_give_the_same_answer(speech):
    from audiomill.curation.quality import QualityOptions

    offsets = np.concatenate([[0], np.cumsum([s.size for s in speech])])
    samples = np.concatenate(speech)
    whole = segment_metrics(samples, offsets)
    chunked = segment_metrics(samples, offsets, options=QualityOptions(chunk_samples=1000))
    for name in whole:
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-6, err_msg=name)


def test_quality_stage_appends_float_columns_with_nulls(speech):
    audio = [speech[0].tobytes(), signals.silence(1.0, SR).tobytes(), speech[1].tobytes()]
    table = pa.table({schema.KEY: ["a", "b", "c"], schema.AUDIO: pa.array(audio, pa.large_binary())})
    out = QualityStage()(table.slice(1))  # a sliced column: offsets do not start at 0
    for name in schema.QUALITY_COLUMNS:
        assert out.schema.field(name).type == pa.float64()
    assert out[schema.Q_LOUDNESS_LUFS].to_pylist()[0] is None  # digital silence: every block gated
    direct = metrics(signals.silence(1.0, SR), speech[1])
    assert out[schema.Q_SNR_DB].to_pylist()[1] == pytest.approx(direct[schema.Q_SNR_DB][1])
    samples, offsets = pcm_batch(table.slice(1)[schema.AUDIO])
    assert offsets[-1] - offsets[0] == SR + speech[1].size
