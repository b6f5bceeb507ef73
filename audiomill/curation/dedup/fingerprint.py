"""Audio fingerprint: spectral-peak landmarks hashed into tokens, with their times.

A landmark is a pair of spectrogram peaks (anchor, target) close in time and frequency; its token
packs (anchor frequency bin, frequency difference, time difference). Tokens do not depend on
absolute time, gain or the container, and only peaks between 250 Hz and 4 kHz are used, so audio
resampled through 8 kHz, re-encoded with a lossy codec or mixed with moderate noise keeps most of
its tokens while a different utterance (even by the same voice) shares few. Peaks are chosen with
purely local rules (2-D local maximum, within ``rel_db`` of the loudest frame nearby), so a segment
embedded in a longer recording keeps the tokens it has on its own. Input is 16 kHz mono float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy import ndimage

from audiomill.schema import SAMPLE_RATE

FINGERPRINT_VERSION = "landmark-1"
"""Changes whenever tokens change; stored with features so old and new tokens are never mixed."""


@dataclass(frozen=True)
class FingerprintOptions:
    """Spectrogram and landmark settings. Frames are ``hop`` samples (5 ms) at 16 kHz."""

    n_fft: int = 1024  # 64 ms window: resolves pitch harmonics (15.6 Hz bins)
    hop: int = 80
    fmin_hz: float = 250.0
    fmax_hz: float = 4000.0  # survives a trip through 8 kHz
    peak_frames: int = 8  # a peak is the maximum within +-40 ms ...
    peak_bins: int = 6  # ... and +-94 Hz
    rel_db: float = 20.0  # and within 20 dB of the loudest frame within +-ref_frames
    ref_frames: int = 100
    floor_db: float = -100.0  # digital silence has no peaks
    fan_out: int = 4  # targets per anchor
    max_dt: int = 64  # frames (320 ms)
    max_df: int = 31  # bins
    dt_step: int = 4  # time differences are quantized to 20 ms, frequency kept at bin precision


DEFAULT_OPTIONS = FingerprintOptions()


def log_spectrogram(audio: np.ndarray, opts: FingerprintOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Power in dB, shape (frames, bins between fmin and fmax)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size < opts.n_fft:
        audio = np.pad(audio, (0, opts.n_fft - audio.size))
    frames = np.lib.stride_tricks.sliding_window_view(audio, opts.n_fft)[:: opts.hop]
    spectrum = scipy.fft.rfft(frames * _window(opts.n_fft), axis=1, workers=1)
    lo = int(opts.fmin_hz * opts.n_fft / SAMPLE_RATE)
    hi = int(opts.fmax_hz * opts.n_fft / SAMPLE_RATE)
    band = spectrum[:, lo:hi]
    power = band.real * band.real + band.imag * band.imag
    return 10.0 * np.log10(power + np.float32(1e-12))


def spectral_peaks(spec_db: np.ndarray, opts: FingerprintOptions = DEFAULT_OPTIONS) -> tuple[np.ndarray, np.ndarray]:
    """(frame, bin) of local maxima, sorted by frame then bin."""
    if spec_db.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    local_max = ndimage.maximum_filter(spec_db, size=(2 * opts.peak_frames + 1, 2 * opts.peak_bins + 1),
                                       mode="constant", cval=-np.inf)
    reference = ndimage.maximum_filter1d(spec_db.max(axis=1), 2 * opts.ref_frames + 1, mode="nearest")
    is_peak = (spec_db == local_max) & (spec_db > reference[:, None] - opts.rel_db) & (spec_db > opts.floor_db)
    frames, bins = np.nonzero(is_peak)  # row-major: already sorted by frame, then bin
    return frames, bins


def landmark_tokens(audio: np.ndarray, opts: FingerprintOptions = DEFAULT_OPTIONS) -> tuple[np.ndarray, np.ndarray]:
    """(tokens uint32, anchor times in seconds float32), one entry per landmark (may repeat)."""
    frames, bins = spectral_peaks(log_spectrogram(audio, opts), opts)
    n = frames.size
    anchors, tokens = [], []
    taken = np.zeros(n, np.int32)  # targets already paired per anchor
    for offset in range(1, min(n, opts.fan_out * 8)):
        dt = frames[offset:] - frames[:-offset]
        df = bins[offset:] - bins[:-offset]
        ok = (dt > 0) & (dt <= opts.max_dt) & (np.abs(df) <= opts.max_df) & (taken[:-offset] < opts.fan_out)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            if dt.size and dt.min() > opts.max_dt:
                break
            continue
        taken[idx] += 1
        anchors.append(idx)
        tokens.append((bins[idx] << 14) | ((df[idx] + opts.max_df) << 7) | (dt[idx] // opts.dt_step))
    if not tokens:
        return np.zeros(0, np.uint32), np.zeros(0, np.float32)
    anchor_idx = np.concatenate(anchors)
    token = np.concatenate(tokens).astype(np.uint32)
    times = (frames[anchor_idx] * opts.hop / SAMPLE_RATE).astype(np.float32)
    return token, times


_WINDOWS: dict[int, np.ndarray] = {}


def _window(n: int) -> np.ndarray:
    if n not in _WINDOWS:
        _WINDOWS[n] = np.hanning(n).astype(np.float32)
    return _WINDOWS[n]
