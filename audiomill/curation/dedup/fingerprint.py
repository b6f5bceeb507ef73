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

from audiomill.schema import SAMPLE_RATE

FINGERPRINT_VERSION = "landmark-2+w32"
"""Changes whenever tokens change; stored with features so old and new tokens are never mixed."""


@dataclass(frozen=True)
class FingerprintOptions:
    """Spectrogram and landmark settings. Frames are ``hop`` samples (5 ms) of the decimated signal."""

    decimate: int = 2  # analyse at 8 kHz: only 250 Hz..4 kHz is used, and half the samples is half the FFT
    n_fft: int = 512  # 64 ms window at 8 kHz: resolves pitch harmonics (15.6 Hz bins)
    hop: int = 40  # 5 ms
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


def power_spectrogram(audio: np.ndarray, opts: FingerprintOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Power (linear) of the fmin..fmax bins, shape (frames, bins), float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if opts.decimate > 1:
        import scipy.signal  # here, not at the top: the driver imports this module for its constants only,
        # and scipy.signal costs ~0.5 s to import (it scrapes its docstrings)

        audio = scipy.signal.upfirdn(_decimation_filter(opts.decimate), audio, 1, opts.decimate)
        audio = audio[_DECIMATION_TAPS // (2 * opts.decimate):].astype(np.float32, copy=False)
    rate = SAMPLE_RATE / opts.decimate
    if audio.size < opts.n_fft:
        audio = np.pad(audio, (0, opts.n_fft - audio.size))
    frames = np.lib.stride_tricks.sliding_window_view(audio, opts.n_fft)[:: opts.hop]
    spectrum = scipy.fft.rfft(frames * _window(opts.n_fft), axis=1, workers=1)
    lo = int(opts.fmin_hz * opts.n_fft / rate)
    hi = min(int(opts.fmax_hz * opts.n_fft / rate), opts.n_fft // 2)
    pairs = spectrum.view(np.float32)[:, 2 * lo: 2 * hi]  # (re, im) interleaved
    squared = pairs * pairs
    return squared[:, 0::2] + squared[:, 1::2]


def spectral_peaks(power: np.ndarray, opts: FingerprintOptions = DEFAULT_OPTIONS) -> tuple[np.ndarray, np.ndarray]:
    """(frame, bin) of local maxima, sorted by frame then bin.

    Peaks are chosen on power, not dB: a local maximum and a ratio to a reference do not change
    under a monotonic map, so the log is never taken.
    """
    if power.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    local_max = centered_max(centered_max(power, opts.peak_frames, axis=0), opts.peak_bins, axis=1)
    frames, bins = np.nonzero(power == local_max)  # row-major: sorted by frame, then bin
    reference = centered_max(power.max(axis=1), opts.ref_frames, axis=0)
    values = power[frames, bins]
    keep = (values > reference[frames] * np.float32(10.0 ** (-opts.rel_db / 10.0))) \
        & (values > np.float32(10.0 ** (opts.floor_db / 10.0)))
    return frames[keep], bins[keep]


def centered_max(x: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """out[i] = max(x[i - radius : i + radius + 1]) along ``axis`` (edges padded with -inf).

    Log-doubling: about log2(2 * radius + 1) + 1 vectorized maxima, whatever the radius.
    """
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius, radius)
    out = np.pad(x, pad, constant_values=-np.inf)
    length, span = 2 * radius + 1, 1
    while span * 2 <= length:
        out = np.maximum(_take(out, slice(None, -span), axis), _take(out, slice(span, None), axis))
        span *= 2
    if span < length:
        rest = length - span
        out = np.maximum(_take(out, slice(None, -rest), axis), _take(out, slice(rest, None), axis))
    return out


def _take(x: np.ndarray, index: slice, axis: int) -> np.ndarray:
    return x[index] if axis == 0 else x[:, index]


def landmark_tokens(audio: np.ndarray, opts: FingerprintOptions = DEFAULT_OPTIONS) -> tuple[np.ndarray, np.ndarray]:
    """(tokens uint32, anchor times in seconds float32), one entry per landmark (may repeat).

    Each peak is paired with the next ``fan_out`` peaks (in frame, then bin order) that lie within
    ``max_dt`` frames after it and ``max_df`` bins of it; all candidate targets are compared at once
    as an (anchors, later peaks) matrix.
    """
    frames, bins = spectral_peaks(power_spectrogram(audio, opts), opts)
    n = frames.size
    if n < 2:
        return np.zeros(0, np.uint32), np.zeros(0, np.float32)
    reach = min(n - 1, opts.fan_out * 8)
    target = np.minimum(np.arange(n)[:, None] + np.arange(1, reach + 1)[None, :], n - 1)
    dt = frames[target] - frames[:, None]
    df = bins[target] - bins[:, None]
    ok = (dt > 0) & (dt <= opts.max_dt) & (np.abs(df) <= opts.max_df) & (target > np.arange(n)[:, None])
    ok &= np.cumsum(ok, axis=1) <= opts.fan_out
    anchor, column = np.nonzero(ok)
    dt, df = dt[anchor, column], df[anchor, column]
    tokens = ((bins[anchor] << 14) | ((df + opts.max_df) << 7) | (dt // opts.dt_step)).astype(np.uint32)
    times = (frames[anchor] * (opts.hop * opts.decimate / SAMPLE_RATE)).astype(np.float32)
    return tokens, times


_WINDOWS: dict[int, np.ndarray] = {}
_FILTERS: dict[int, np.ndarray] = {}
_DECIMATION_TAPS = 31


def _window(n: int) -> np.ndarray:
    if n not in _WINDOWS:
        _WINDOWS[n] = np.hanning(n).astype(np.float32)
    return _WINDOWS[n]


def _decimation_filter(factor: int) -> np.ndarray:
    """Low-pass FIR for decimation (31 taps, Kaiser 6: ~60 dB stop band); odd length, centred."""
    if factor not in _FILTERS:
        import scipy.signal

        taps = scipy.signal.firwin(_DECIMATION_TAPS, 1.0 / factor, window=("kaiser", 6.0))
        _FILTERS[factor] = taps.astype(np.float32)
    return _FILTERS[factor]
