"""Speaker embeddings from spectral statistics: no weights, vectorized numpy.

Frames are 25 ms Hann windows every 10 ms at 16 kHz. Per frame: 24 MFCCs from a 40-band log-mel
spectrum (60 Hz..7.6 kHz) and a pitch estimate from the normalised autocorrelation (the inverse
FFT of the power spectrum, zero-padded so it is not circular), searched over 60..400 Hz. A window's
embedding is the mean and standard deviation of MFCC 1..23 over its loud frames (within 30 dB of
the window's loudest frame; c0, the level, is left out so gain does not change a speaker) plus the
median and spread of log-f0 over its voiced frames.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct

SAMPLE_RATE = 16_000
FRAME_S = 0.010
_FRAME = 400  # 25 ms
_HOP = 160  # 10 ms
_NFFT = 1024
_N_MELS = 40
_N_MFCC = 24
_F0_RANGE_HZ = (60.0, 400.0)
_VOICED_CORR = 0.45
_LOUD_RANGE_DB = 30.0
_CHUNK_FRAMES = 4096


def _mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = _NFFT, n_mels: int = _N_MELS,
                    low_hz: float = 60.0, high_hz: float = 7600.0) -> np.ndarray:
    mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)  # noqa: E731
    edges_mel = np.linspace(mel(low_hz), mel(high_hz), n_mels + 2)
    edges_hz = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    bins_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins_hz - lower) / (centre - lower)
    falling = (upper - bins_hz) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


_MEL = _mel_filterbank()
_WINDOW = np.hanning(_FRAME).astype(np.float32)


def frame_features(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mfcc (frames, 24), log energy dB (frames,), f0 Hz (frames,), NaN where unvoiced).

    Frame i covers samples [i * 160, i * 160 + 400) of 16 kHz ``audio``; computed in chunks so a
    long source never holds its whole spectrogram.
    """
    audio = np.asarray(audio, dtype=np.float32)
    n_frames = max(0, 1 + (audio.size - _FRAME) // _HOP) if audio.size >= _FRAME else 0
    mfcc = np.zeros((n_frames, _N_MFCC), np.float32)
    energy_db = np.full(n_frames, -120.0, np.float32)
    f0 = np.full(n_frames, np.nan, np.float32)
    lag_min = int(SAMPLE_RATE / _F0_RANGE_HZ[1])
    lag_max = int(SAMPLE_RATE / _F0_RANGE_HZ[0])
    for first in range(0, n_frames, _CHUNK_FRAMES):
        count = min(_CHUNK_FRAMES, n_frames - first)
        index = (first + np.arange(count))[:, None] * _HOP + np.arange(_FRAME)[None, :]
        frames = audio[index] * _WINDOW
        power = np.abs(np.fft.rfft(frames, n=_NFFT, axis=1)) ** 2
        log_mel = np.log(power @ _MEL.T + 1e-8)
        mfcc[first: first + count] = dct(log_mel, type=2, norm="ortho", axis=1)[:, :_N_MFCC]
        energy_db[first: first + count] = 10.0 * np.log10(power.sum(axis=1) / _NFFT + 1e-12)
        corr = np.fft.irfft(power, n=_NFFT, axis=1)[:, : lag_max + 1]
        corr /= np.maximum(corr[:, :1], 1e-12)
        lag = lag_min + np.argmax(corr[:, lag_min:], axis=1)
        strength = corr[np.arange(count), lag]
        f0[first: first + count] = np.where(strength > _VOICED_CORR, SAMPLE_RATE / lag, np.nan)
    return mfcc, energy_db, f0


def window_embeddings(mfcc: np.ndarray, energy_db: np.ndarray, f0: np.ndarray,
                      first_frames: np.ndarray, last_frames: np.ndarray) -> np.ndarray:
    """One embedding per window of frames [first, last); shape (windows, 2 * 23 + 2)."""
    embeddings = np.zeros((len(first_frames), 2 * (_N_MFCC - 1) + 2), np.float32)
    for row, (a, b) in enumerate(zip(first_frames.tolist(), last_frames.tolist())):
        loud = energy_db[a:b] > energy_db[a:b].max(initial=-120.0) - _LOUD_RANGE_DB
        coeffs = mfcc[a:b][loud, 1:]
        log_f0 = np.log(f0[a:b][loud])
        log_f0 = log_f0[np.isfinite(log_f0)]
        pitch = [np.median(log_f0), np.std(log_f0)] if log_f0.size >= 3 else [np.log(150.0), 0.0]
        embeddings[row] = np.concatenate([coeffs.mean(axis=0), coeffs.std(axis=0), pitch])
    return embeddings
