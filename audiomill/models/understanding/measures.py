"""Acoustic measures of a clip that attribute labels and scene checks rest on (no words involved).

- SNR: the curation metric ``q_snr_db`` (``curation/quality.py``), so a round speaks the same
  SNR as the clean job's index;
- reverberation: the energy decay rate in dB/s, the 5th percentile of the 10 ms frame-to-frame
  drop of smoothed log energy over loud frames: dry speech falls silent at hundreds of dB/s, a
  reverberant room lets it fall at most ~60 dB per RT60;
- active speech seconds (frames within 30 dB of the loudest), for the speaking-rate check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiomill import schema
from audiomill.curation.quality import segment_metrics
from audiomill.models.understanding.pitch import PitchStats, pitch_stats

SAMPLE_RATE = 16_000
FRAME = 160  # 10 ms


@dataclass(frozen=True)
class Measures:
    """What a clip measures: pitch, SNR (dB), decay rate (dB/s, positive), active speech (s)."""

    pitch: PitchStats
    snr_db: float
    decay_db_s: float
    active_s: float
    duration_s: float

    def vector(self) -> np.ndarray:
        """Scaled, NaN-free features for the attribute heads."""
        f0 = self.pitch.median_hz if np.isfinite(self.pitch.median_hz) else 100.0
        spread = self.pitch.spread_st if np.isfinite(self.pitch.spread_st) else 0.0
        snr = self.snr_db if np.isfinite(self.snr_db) else 0.0
        return np.array([np.log2(f0 / 100.0), spread / 5.0, self.pitch.voiced_ratio, min(snr, 60.0) / 30.0,
                         np.log10(max(self.decay_db_s, 1.0)) - 2.0,
                         self.active_s / max(self.duration_s, 1e-3)], dtype=np.float32)


def frame_energy_db(audio: np.ndarray) -> np.ndarray:
    count = audio.size // FRAME
    if count == 0:
        return np.zeros(0)
    power = np.mean(audio[:count * FRAME].astype(np.float64).reshape(count, FRAME) ** 2, axis=1)
    return 10 * np.log10(power + 1e-12)


def decay_rate_db_s(audio: np.ndarray) -> float:
    """How fast energy can fall (dB/s): small in reverberant rooms, large in dry recordings."""
    energy = frame_energy_db(audio)
    if energy.size < 8:
        return float("nan")
    smooth = np.convolve(energy, np.ones(3) / 3, mode="same")
    drops = -np.diff(smooth) / (FRAME / SAMPLE_RATE)
    loud = smooth[:-1] > smooth.max() - 30.0
    return float(np.percentile(drops[loud], 95)) if loud.sum() >= 4 else float("nan")


def active_seconds(audio: np.ndarray, range_db: float = 30.0) -> float:
    energy = frame_energy_db(audio)
    if energy.size == 0:
        return 0.0
    return float(np.sum(energy > energy.max() - range_db) * FRAME / SAMPLE_RATE)


def measure(audio: np.ndarray) -> Measures:
    audio = np.asarray(audio, dtype=np.float32)
    snr = segment_metrics(audio, np.array([0, audio.size]))[schema.Q_SNR_DB][0]
    return Measures(pitch=pitch_stats(audio), snr_db=float(snr), decay_db_s=decay_rate_db_s(audio),
                    active_s=active_seconds(audio), duration_s=audio.size / SAMPLE_RATE)
