"""Per-segment audio quality metrics, vectorized over a whole batch of segments.

A batch is one concatenated float32 array plus sample offsets (the layout of an Arrow binary
column), so each metric is a few numpy passes over all segments at once: no per-sample and no
per-segment Python loops. Two framings are used:

* loudness: rectangular 100 ms sub-blocks, 400 ms gating blocks at 100 ms steps (ITU-R BS.1770-4);
* all other frame metrics: Hann frames of ``frame_s`` at ``hop_s`` hops (32 ms / 16 ms).

Units are in the names: ``_db``, ``_lufs``, ``_hz``, ``_ratio`` (0..1), ``_fs`` (fraction of full
scale), ``_score`` (0..1). Later stages add their own metric columns (ASR: ``asr_*``); the filter
policy (``curation/policy.py``) evaluates any numeric column by name, so a new metric never needs
this module.

MOS: no package here ships a fast non-intrusive MOS model (speechmos' DNSMOS runs at ~5x realtime
and needs librosa), so ``MosEstimator`` is only an interface; ``QualityStage`` fills ``q_mos``
when given one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.fft
from scipy.ndimage import uniform_filter1d
from numpy.lib.stride_tricks import sliding_window_view

from audiomill import schema

_TINY = 1e-20
_PERSIST_CHECKS = 8


@dataclass(frozen=True)
class QualityOptions:
    """Tuning of the metric definitions; the defaults are what ``audiomill clean`` uses."""

    frame_s: float = 0.032
    hop_s: float = 0.016
    noise_percentile: float = 10.0  # frame-power percentile taken as the noise floor
    active_margin_db: float = 3.0  # frames this far above the noise floor count as signal
    noise_floor_dbfs: float = -100.0  # lowest noise power used (caps SNR of digital silence)
    silence_dbfs: float = -60.0  # frames quieter than this are silent
    clip_full_scale: float = 0.999  # samples at least this loud are clipped, always
    clip_plateau_tolerance: float = 1e-4  # relative distance to the peak that counts as "at peak"
    clip_min_peak: float = 0.01  # plateaus below this peak (-40 dBFS) are not clipping
    bandwidth_floor_db: float = 50.0  # bandwidth edge: mean spectrum this far below its maximum
    bandwidth_smooth_hz: float = 250.0  # spectra are averaged over this width before the noise-floor test
    min_hz: float = 100.0  # lowest frequency for bandwidth and tonal analysis
    tonal_max_hz: float = 5000.0
    tonal_prominence_db: float = 20.0  # a tonal peak stands this far above the frame's median bin
    tonal_persist_s: float = 0.4  # a peak must hold its frequency this long to count as tonal
    chunk_samples: int = 1 << 22  # segments are processed in chunks of about this many samples


DEFAULT_OPTIONS = QualityOptions()


class MosEstimator(Protocol):
    """A non-intrusive MOS model (DNSMOS-class): one score (1..5) per segment."""

    version: str

    def predict(self, samples: np.ndarray, offsets: np.ndarray, sr: int) -> np.ndarray: ...


def segment_metrics(samples: np.ndarray, offsets: np.ndarray, sr: int = schema.SAMPLE_RATE,
                    options: QualityOptions = DEFAULT_OPTIONS) -> dict[str, np.ndarray]:
    """All ``q_*`` metrics for the segments ``samples[offsets[i]:offsets[i + 1]]`` (float32 mono).

    Returns column name -> float64 array (one value per segment); NaN where a metric is undefined
    (an empty segment; loudness when every block is below the -70 LUFS absolute gate).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    count = offsets.size - 1
    out = {name: np.full(count, np.nan) for name in schema.QUALITY_COLUMNS}
    lengths = np.diff(offsets)
    first = 0
    while first < count:  # chunks of whole segments bound the memory of the frame matrices
        ends = np.searchsorted(offsets, offsets[first] + options.chunk_samples, side="right") - 1
        last = max(first + 1, min(int(ends), count))
        chunk = slice(first, last)
        nonempty = np.flatnonzero(lengths[chunk] > 0) + first
        if nonempty.size:
            starts, stops = offsets[nonempty], offsets[nonempty + 1]
            values = _chunk_metrics(samples, starts, stops, sr, options)
            for name, array in values.items():
                out[name][nonempty] = array
        first = last
    return out


def _chunk_metrics(samples: np.ndarray, starts: np.ndarray, stops: np.ndarray, sr: int,
                   options: QualityOptions) -> dict[str, np.ndarray]:
    lengths = stops - starts
    x, offsets = _gather_padded(samples, starts, stops, max(frame_length(sr, options), int(0.1 * sr)))
    clipping = _clipping_ratio(x, offsets, lengths, options)
    dc = np.add.reduceat(x, offsets[:-1], dtype=np.float64) / lengths
    x -= np.repeat(dc.astype(np.float32), np.diff(offsets))  # no DC in any spectral metric
    frames = _frame_powers(x, offsets, sr, options)
    snr, active = _snr_db(frames, options)
    edge_hz, signal_hz = _bandwidths_hz(frames, active, sr, options)
    return {
        schema.Q_SNR_DB: snr,
        schema.Q_CLIPPING_RATIO: clipping,
        schema.Q_LOUDNESS_LUFS: _integrated_loudness(x, offsets, sr),
        schema.Q_DC_OFFSET_FS: dc,
        schema.Q_BANDWIDTH_HZ: edge_hz,
        schema.Q_SIGNAL_BANDWIDTH_HZ: signal_hz,
        schema.Q_SILENCE_RATIO: _per_segment_mean(frames, frames.power < 10 ** (options.silence_dbfs / 10)),
        schema.Q_MUSIC_SCORE: _music_score(frames, sr, options),
    }


def frame_length(sr: int, options: QualityOptions = DEFAULT_OPTIONS) -> int:
    """Samples in one spectral frame at ``sr``: the power of two nearest ``options.frame_s``."""
    return 1 << int(round(math.log2(options.frame_s * sr)))


def _gather_padded(samples: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                   min_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Copy segments into one float32 array, zero-padding each to at least ``min_len`` samples."""
    lengths = stops - starts
    padded = np.maximum(lengths, min_len)
    offsets = np.concatenate([[0], np.cumsum(padded)])
    if np.array_equal(padded, lengths) and np.array_equal(starts[1:], stops[:-1]):
        return samples[starts[0]:stops[-1]].astype(np.float32, copy=True), offsets
    x = np.zeros(int(offsets[-1]), dtype=np.float32)
    flat = np.arange(int(lengths.sum()))
    packed = np.repeat(np.cumsum(lengths) - lengths, lengths)
    x[flat - packed + np.repeat(offsets[:-1], lengths)] = samples[flat - packed + np.repeat(starts, lengths)]
    return x, offsets


# -- sample-level metrics ------------------------------------------------------------------------


def clipping_ratio(samples: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                   options: QualityOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Fraction of samples that are clipped: at full scale, or on a flat plateau at the peak.

    A plateau is three or more consecutive samples within ``clip_plateau_tolerance`` of the
    segment's peak magnitude (hard clipping that was later scaled down); a clean waveform touches
    its peak at isolated samples (a pure tone above ~40 Hz never holds it for three). Clipping that
    a lossy codec later smeared into ripples wider than the tolerance is caught only at full scale.
    """
    x, offsets = _gather_padded(samples, starts, stops, 1)
    return _clipping_ratio(x, offsets, stops - starts, options)


def _clipping_ratio(x: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                    options: QualityOptions) -> np.ndarray:
    magnitude = np.abs(x)
    peak = np.maximum.reduceat(magnitude, offsets[:-1])
    threshold = np.where(peak >= options.clip_min_peak, peak * (1 - options.clip_plateau_tolerance), np.inf)
    near = magnitude >= np.repeat(threshold.astype(np.float32), np.diff(offsets))
    link = near[:-1] & near[1:]
    link[offsets[1:-1] - 1] = False  # no plateau across a segment boundary
    run_start = link[:-1] & link[1:]  # samples j, j+1, j+2 all at the peak
    plateau = np.zeros_like(near)
    for shift in range(3):
        plateau[shift:shift + run_start.size] |= run_start
    clipped = (magnitude >= options.clip_full_scale) | plateau
    return np.add.reduceat(clipped.view(np.uint8), offsets[:-1], dtype=np.int64) / lengths


# -- loudness (ITU-R BS.1770-4) ------------------------------------------------------------------


def k_weighting_power(freqs_hz: np.ndarray, sr: int) -> np.ndarray:
    """|H(f)|^2 of the BS.1770 K-weighting (high shelf then high pass) as digital biquads at ``sr``.

    Coefficients follow the analog prototype used by libebur128, so any sample rate gives the
    response the standard's 48 kHz coefficients describe.
    """
    z = np.exp(-1j * 2 * np.pi * np.asarray(freqs_hz, dtype=np.float64) / sr)
    response = np.ones_like(z)
    for b, a in _k_weighting_biquads(sr):
        response *= (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return np.abs(response) ** 2


def _k_weighting_biquads(sr: int) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sr)
    vh, vb = 10 ** (gain_db / 20), (10 ** (gain_db / 20)) ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0), \
        (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sr)
    a0 = 1 + k / q + k * k
    high_pass = (1.0, -2.0, 1.0), (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    return [shelf, high_pass]


def _integrated_loudness(x: np.ndarray, offsets: np.ndarray, sr: int) -> np.ndarray:
    """Gated integrated loudness (LUFS) per segment, mono (channel weight 1).

    K-weighting is applied per 100 ms rectangular sub-block in the frequency domain (Parseval:
    mean square of the filtered block = weighted sum of its power spectrum); a 400 ms block is
    four consecutive sub-blocks; then the -70 LUFS absolute and -10 LU relative gates.
    Segments shorter than 400 ms are one block.
    """
    sub = int(round(0.1 * sr))
    counts = np.diff(offsets) // sub
    first_sub = np.concatenate([[0], np.cumsum(counts)])
    starts = np.repeat(offsets[:-1], counts) + sub * (np.arange(first_sub[-1]) - np.repeat(first_sub[:-1], counts))
    blocks = sliding_window_view(x, sub)[starts]
    power = _power_spectrum(scipy.fft.rfft(blocks, axis=1))
    weights = _one_sided(sub) * k_weighting_power(np.fft.rfftfreq(sub, 1 / sr), sr) / (sub * sub)
    sub_power = power @ weights.astype(np.float32)
    cumulative = np.concatenate([[0.0], np.cumsum(sub_power, dtype=np.float64)])
    span = np.minimum(counts, 4)
    per_segment = counts - span + 1
    first_block = np.concatenate([[0], np.cumsum(per_segment)])
    segment = np.repeat(np.arange(counts.size), per_segment)
    block_start = first_sub[:-1][segment] + np.arange(first_block[-1]) - first_block[:-1][segment]
    z = (cumulative[block_start + span[segment]] - cumulative[block_start]) / span[segment]
    level = -0.691 + 10 * np.log10(z + _TINY)
    above = level > -70.0
    relative = -0.691 + 10 * np.log10(_group_mean(z, above, segment, counts.size) + _TINY) - 10.0
    gated = above & (level > relative[segment])
    with np.errstate(invalid="ignore", divide="ignore"):
        return -0.691 + 10 * np.log10(_group_mean(z, gated, segment, counts.size))


def _group_mean(values: np.ndarray, mask: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray:
    total = np.bincount(group, weights=values * mask, minlength=groups)
    n = np.bincount(group, weights=mask.astype(np.float64), minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


def _power_spectrum(spectrum: np.ndarray) -> np.ndarray:
    return spectrum.real ** 2 + spectrum.imag ** 2


def _one_sided(n: int) -> np.ndarray:
    """Weights turning an rfft power spectrum into a two-sided sum (Parseval)."""
    weights = np.full(n // 2 + 1, 2.0)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    return weights


# -- frame-level metrics -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frames:
    power: np.ndarray  # (frames,) mean square above min_hz, full scale = 1
    spectrum: np.ndarray  # (frames, bins) power spectrum of the Hann-windowed frame
    segment: np.ndarray  # (frames,) segment index of each frame
    first: np.ndarray  # (segments + 1,) first frame of each segment
    length: int  # frame length in samples


def _frame_powers(x: np.ndarray, offsets: np.ndarray, sr: int, options: QualityOptions) -> _Frames:
    length = frame_length(sr, options)
    hop = max(1, int(round(options.hop_s * sr)))
    counts = 1 + (np.diff(offsets) - length) // hop
    first = np.concatenate([[0], np.cumsum(counts)])
    segment = np.repeat(np.arange(counts.size), counts)
    starts = offsets[:-1][segment] + hop * (np.arange(first[-1]) - first[:-1][segment])
    window = np.hanning(length + 1)[:-1].astype(np.float32)
    spectrum = _power_spectrum(scipy.fft.rfft(sliding_window_view(x, length)[starts] * window, axis=1))
    weights = _one_sided(length) / (length * float(np.sum(window.astype(np.float64) ** 2)))
    weights[np.fft.rfftfreq(length, 1 / sr) < options.min_hz / 2] = 0.0
    return _Frames(spectrum @ weights.astype(np.float32), spectrum, segment, first, length)


def sampled_bandwidth_hz(frames: np.ndarray, sr: int, options: QualityOptions = DEFAULT_OPTIONS) -> float:
    """``q_signal_bandwidth_hz`` of one recording from frames sampled along it at its own rate.

    ``frames`` is (n, ``frame_length(sr)``) raw samples; they are framed back to back (hop = one
    frame), so the noise floor, the active frames and the band edge are exactly the segment
    metric's. The decoder measures it before resampling (``orig_bandwidth_hz``): the stored 16 kHz
    audio cannot tell an 8 kHz original from its copy upsampled to 16 kHz, nor a 48 kHz original
    from its copy downsampled to 16 kHz. NaN for no frames.
    """
    if frames.size == 0:
        return math.nan
    length = frames.shape[1]
    x = np.ascontiguousarray(frames, dtype=np.float32).reshape(-1)
    x = x - np.float32(x.mean(dtype=np.float64))
    offsets = np.array([0, x.size], dtype=np.int64)
    back_to_back = dataclasses.replace(options, hop_s=length / sr)
    framed = _frame_powers(x, offsets, sr, back_to_back)
    _, active = _snr_db(framed, back_to_back)
    return float(_bandwidths_hz(framed, active, sr, back_to_back)[1][0])


def _per_segment_mean(frames: _Frames, mask: np.ndarray) -> np.ndarray:
    return np.add.reduceat(mask.view(np.uint8), frames.first[:-1], dtype=np.int64) / np.diff(frames.first)


def _snr_db(frames: _Frames, options: QualityOptions) -> tuple[np.ndarray, np.ndarray]:
    """(SNR dB, active-frame mask): noise = a low percentile of frame power;
    signal = mean power of frames ``active_margin_db`` above it, minus the noise."""
    order = np.lexsort((frames.power, frames.segment))
    counts = np.diff(frames.first)
    rank = np.floor(options.noise_percentile / 100 * (counts - 1)).astype(np.int64)
    noise = np.maximum(frames.power[order[frames.first[:-1] + rank]], 10 ** (options.noise_floor_dbfs / 10))
    active = frames.power > (noise * 10 ** (options.active_margin_db / 10))[frames.segment]
    signal = _group_mean(frames.power, active, frames.segment, counts.size)
    excess = np.where(np.isnan(signal), 0.0, signal / noise - 1.0)
    return 10 * np.log10(np.maximum(excess, 0.1)), active


def _bandwidths_hz(frames: _Frames, active: np.ndarray, sr: int, options: QualityOptions
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(edge, signal band) per segment, Hz.

    edge (``q_bandwidth_hz``): the highest frequency where the mean spectrum of active frames is
    within ``bandwidth_floor_db`` of its maximum (above ``min_hz``). A sharp edge well below
    Nyquist means upsampled narrowband or lowpassed (e.g. MP3) audio. Hiss fills the band up to
    Nyquist, as it should: the policy's narrowband rule must not call noisy wideband speech
    narrowband.

    signal band (``q_signal_bandwidth_hz``): the same edge, counting only frequencies where the
    active frames stand ``active_margin_db`` above the inactive (noise-floor) frames, with
    spectra averaged over ``bandwidth_smooth_hz``. Stationary sound skips the noise-floor test: its
    active frames are less than twice ``active_margin_db`` above the inactive ones. The dedup keep
    score uses it. Broadband noise added to a narrowband recording fills the empty band, and by the
    edge the noisy copy scored full-band and won the cluster over the pristine original
    (``benchmarks/dedup_real.py``)."""
    mean = _mean_spectrum(frames, active, fallback=True)
    noise = _mean_spectrum(frames, ~active, fallback=False)
    contrast = mean.sum(axis=1) / np.maximum(noise.sum(axis=1), _TINY)  # active over inactive power
    noise *= (contrast > 10 ** (2 * options.active_margin_db / 10))[:, None]  # else stationary: no floor test
    low = int(np.ceil(options.min_hz * frames.length / sr))
    level = 10 * np.log10(mean[:, low:] + _TINY)
    above = level > (level.max(axis=1) - options.bandwidth_floor_db)[:, None]
    smooth = max(1, int(round(options.bandwidth_smooth_hz * frames.length / sr)))  # per-bin power is noisy
    excess = uniform_filter1d(mean, smooth, axis=1) > uniform_filter1d(noise, smooth, axis=1) * 10 ** (
        options.active_margin_db / 10)
    signal = above & excess[:, low:]
    return _highest_hz(above, low, frames.length, sr), _highest_hz(signal, low, frames.length, sr)


def _highest_hz(above: np.ndarray, low: int, length: int, sr: int) -> np.ndarray:
    """Per row, the frequency of the highest True bin (bins counted from ``low``); ``low`` if none."""
    highest = above.shape[1] - 1 - np.argmax(above[:, ::-1], axis=1) + low
    return np.where(above.any(axis=1), highest, low) * sr / length


def _mean_spectrum(frames: _Frames, use: np.ndarray, fallback: bool) -> np.ndarray:
    """Mean power spectrum per segment over the ``use`` frames; a segment with none of them
    averages all its frames (``fallback``) or gets zeros."""
    has_any = np.add.reduceat(use.view(np.uint8), frames.first[:-1]) > 0
    if fallback:
        use = use | ~has_any[frames.segment]
    total = np.add.reduceat(np.where(use[:, None], frames.spectrum, 0.0), frames.first[:-1], axis=0)
    counts = np.add.reduceat(use.view(np.uint8), frames.first[:-1], dtype=np.int64)
    return total / np.maximum(counts, 1)[:, None]


def _music_score(frames: _Frames, sr: int, options: QualityOptions) -> np.ndarray:
    """Share of in-band energy (``min_hz``..``tonal_max_hz``) held by spectral peaks that keep
    their frequency (within one bin) for ``tonal_persist_s``: sustained notes and tones score near
    1; speech, whose harmonics glide with intonation and stop at consonants, scores low."""
    hop = max(1, int(round(options.hop_s * sr)))
    lag = max(2, int(round(options.tonal_persist_s * sr / hop)))
    low = int(np.ceil(options.min_hz * frames.length / sr))
    high = int(options.tonal_max_hz * frames.length / sr)
    band = frames.spectrum[:, low - 2:high + 3]
    core = band[:, 2:-2]
    middle = core.shape[1] // 2
    median = np.partition(core, middle, axis=1)[:, middle:middle + 1]  # 4x cheaper than np.median
    peaks = ((core > band[:, 1:-3]) & (core >= band[:, 3:-1]) & (core > band[:, :-4]) & (core >= band[:, 4:])
             & (core > median * 10 ** (options.tonal_prominence_db / 10)) & (frames.power > 10 ** (options.silence_dbfs / 10))[:, None])
    near = peaks.copy()
    near[:, 1:] |= peaks[:, :-1]
    near[:, :-1] |= peaks[:, 1:]
    position = np.arange(frames.segment.size) - frames.first[:-1][frames.segment]
    valid = position + lag < np.diff(frames.first)[frames.segment]
    later = np.flatnonzero(valid)
    persistent = np.zeros_like(peaks)
    held_all = peaks[later]
    for step in range(1, _PERSIST_CHECKS + 1):  # the peak must be there at every check, not just the ends
        held_all = held_all & near[later + (lag * step) // _PERSIST_CHECKS]
    persistent[later] = held_all
    held = persistent.copy()
    held[:, 1:] |= persistent[:, :-1]
    held[:, :-1] |= persistent[:, 1:]
    tonal = np.where(held, core, 0.0).sum(axis=1)
    total = core.sum(axis=1) * valid
    tonal_sum = np.add.reduceat(tonal, frames.first[:-1])
    total_sum = np.add.reduceat(total, frames.first[:-1])
    return np.where(total_sum > 0, tonal_sum / np.maximum(total_sum, _TINY), 0.0)
