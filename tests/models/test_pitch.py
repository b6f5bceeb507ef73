"""f0 of a voice under mains hum (``understanding.pitch``): the hum is removed before YIN (without
that step the voice below, on for a third of the time, measured 60 Hz: the hum)."""

from __future__ import annotations

import numpy as np

from audiomill.models.generation import scene
from audiomill.models.understanding.pitch import SAMPLE_RATE, pitch_stats, suppress_stationary, yin_f0


def _voice(seconds: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """A harmonic voice gliding 200 -> 240 Hz, on for 0.2 s of every 0.6 s; (audio, f0 track)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 200.0 * 1.2 ** (t / seconds)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    audio = sum(0.8 ** k * np.sin((k + 1) * phase) for k in range(12))
    on = (t % 0.6) < 0.2
    return (0.1 * audio * on).astype(np.float32), f0[on]


def test_hum_at_low_snr_does_not_become_the_pitch():
    voice, truth = _voice()
    hum = scene.hum(voice.size, np.random.default_rng(4))
    gain = np.sqrt(np.mean(voice.astype(np.float64) ** 2) / np.mean(hum.astype(np.float64) ** 2))
    mixed = (voice + gain * hum * 10 ** (-3 / 20)).astype(np.float32)  # 3 dB SNR
    true_median = float(np.median(truth))
    raw = yin_f0(mixed)
    raw_voiced = raw[np.isfinite(raw)]
    off_raw = np.abs(12 * np.log2(raw_voiced / true_median)) > 3
    assert off_raw.mean() > 0.2, "the case should be hard: YIN alone follows the hum"
    stats = pitch_stats(mixed)
    assert abs(12 * np.log2(stats.median_hz / true_median)) < 1.0, stats
    assert stats.spread_st < 4.0, stats  # the glide itself spans 3.2 semitones


def test_clean_speech_pitch_is_unchanged_and_short_clips_pass_through():
    voice, truth = _voice()
    stats = pitch_stats(voice)
    assert abs(12 * np.log2(stats.median_hz / float(np.median(truth)))) < 0.5, stats
    short = voice[:4000]
    assert np.array_equal(suppress_stationary(short), short.astype(np.float64))
