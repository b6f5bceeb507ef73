"""Turn per-frame speech probabilities into segment spans (seconds): pure numpy, no model.

Steps, in order: hysteresis on the probabilities (as silero-vad's state machine), bridge short
pauses, drop short bursts, pad, merge close neighbours, split long segments at the quietest
point of the audio, drop short segments. Frame ``i`` covers ``[i * frame_s, (i + 1) * frame_s)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiomill.config import VadConfig

NEG_THRESHOLD_OFFSET = 0.15  # speech ends below threshold - 0.15, as in silero-vad
MIN_NEG_THRESHOLD = 0.01
ENERGY_WINDOW_S = 0.02  # RMS window of the energy curve used to place cuts
ENERGY_SMOOTH_S = 0.2  # moving-average length over that curve
ENERGY_FLOOR_DB = -120.0
_EPS_S = 1e-9  # comparisons of durations in seconds tolerate float rounding


@dataclass(frozen=True)
class SpanResult:
    """Final segments of one source.

    ``starts_s``/``ends_s``: float64 seconds, sorted, non-overlapping, within the audio.
    ``speech_ratio``: frames with probability >= threshold over all frames.
    ``segment_speech_ratios``: the same fraction over the frames centred inside each segment.
    ``dropped_s``: seconds of speech (frames in speech after hysteresis) left outside every
    final segment, because their burst or segment was too short.
    """

    starts_s: np.ndarray
    ends_s: np.ndarray
    speech_ratio: float
    segment_speech_ratios: np.ndarray
    dropped_s: float


def hysteresis_mask(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Speech starts at prob >= threshold and lasts until prob < max(threshold - 0.15, 0.01)."""
    neg_threshold = max(threshold - NEG_THRESHOLD_OFFSET, MIN_NEG_THRESHOLD)
    decided = (probs >= threshold) | (probs < neg_threshold)
    last_decided = np.maximum.accumulate(np.where(decided, np.arange(probs.size), -1))
    return (last_decided >= 0) & (probs[np.maximum(last_decided, 0)] >= threshold)


def mask_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a boolean mask."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def speech_runs(probs: np.ndarray, cfg: VadConfig, frame_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame runs of speech after hysteresis, pause bridging and dropping of short bursts."""
    starts, ends = mask_runs(hysteresis_mask(probs, cfg.threshold))
    if starts.size:
        gaps_s = (starts[1:] - ends[:-1]) * frame_s
        keep_gap = gaps_s >= cfg.min_silence_s - _EPS_S
        starts = np.concatenate((starts[:1], starts[1:][keep_gap]))
        ends = np.concatenate((ends[:-1][keep_gap], ends[-1:]))
    long_enough = (ends - starts) * frame_s >= cfg.min_speech_s - _EPS_S
    return starts[long_enough], ends[long_enough]


def pad_spans(starts_s: np.ndarray, ends_s: np.ndarray, pad_s: float,
              duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Pad both sides within [0, duration_s]; a gap shorter than 2 * pad_s is shared at its middle."""
    middles = (ends_s[:-1] + starts_s[1:]) / 2
    new_starts = np.maximum(starts_s - pad_s, np.concatenate(([0.0], middles)))
    new_ends = np.minimum(ends_s + pad_s, np.concatenate((middles, [duration_s])))
    return new_starts, new_ends


def merge_close(starts_s: np.ndarray, ends_s: np.ndarray, merge_gap_s: float,
                max_segment_s: float) -> list[tuple[float, float]]:
    """Merge neighbours closer than merge_gap_s while the merged span stays <= max_segment_s."""
    merged: list[tuple[float, float]] = []
    for start, end in zip(starts_s.tolist(), ends_s.tolist()):
        if merged:
            last_start, last_end = merged[-1]
            if start - last_end < merge_gap_s and end - last_start <= max_segment_s + _EPS_S:
                merged[-1] = (last_start, end)
                continue
        merged.append((start, end))
    return merged


def smoothed_energy_db(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """RMS in dB over ENERGY_WINDOW_S windows, moving-averaged over ENERGY_SMOOTH_S.

    Returns the curve and the window length in seconds; value ``k`` belongs to the window
    centred at ``(k + 0.5) * window_s``.
    """
    window = max(1, round(ENERGY_WINDOW_S * sample_rate))
    count = audio.size // window
    if count == 0:
        return np.zeros(0), window / sample_rate
    frames = audio[:count * window].astype(np.float64).reshape(count, window)
    energy_db = 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 10 ** (ENERGY_FLOOR_DB / 10)))
    half = max(0, round(ENERGY_SMOOTH_S / ENERGY_WINDOW_S) // 2)
    sums = np.concatenate(([0.0], np.cumsum(energy_db)))
    lo = np.clip(np.arange(count) - half, 0, count)
    hi = np.clip(np.arange(count) + half + 1, 0, count)
    return (sums[hi] - sums[lo]) / (hi - lo), window / sample_rate


def split_at_quietest_point(audio: np.ndarray, start_s: float, end_s: float, cfg: VadConfig,
                            sample_rate: int = 16000) -> list[tuple[float, float]]:
    """Cut [start_s, end_s] into pieces of at most max_segment_s at the quietest points.

    Each cut is the earliest minimum of the smoothed energy (dB) among the positions that leave
    both sides >= min_segment_s and the left side <= max_segment_s; the search repeats on the
    remainder. A span already short enough comes back whole.
    """
    first = max(0, int(start_s * sample_rate))
    energy_db, window_s = smoothed_energy_db(audio[first:int(np.ceil(end_s * sample_rate))],
                                             sample_rate)
    centres_s = first / sample_rate + (np.arange(energy_db.size) + 0.5) * window_s
    pieces: list[tuple[float, float]] = []
    piece_start = start_s
    while end_s - piece_start > cfg.max_segment_s + _EPS_S:
        lo = piece_start + cfg.min_segment_s
        hi = min(piece_start + cfg.max_segment_s, end_s - cfg.min_segment_s)
        allowed = np.flatnonzero((centres_s >= lo) & (centres_s <= hi))
        if allowed.size:
            cut = float(centres_s[allowed[np.argmin(energy_db[allowed])]])
        else:
            cut = (lo + hi) / 2
        pieces.append((piece_start, cut))
        piece_start = cut
    pieces.append((piece_start, end_s))
    return pieces


def frames_in_spans(frame_count: int, frame_s: float, starts_s: np.ndarray,
                    ends_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last+1 frame index whose centre lies inside each span."""
    centres_s = (np.arange(frame_count) + 0.5) * frame_s
    return (np.searchsorted(centres_s, starts_s, side="left"),
            np.searchsorted(centres_s, ends_s, side="left"))


def speech_spans(probs: np.ndarray, audio: np.ndarray, cfg: VadConfig, frame_s: float = 0.032,
                 sample_rate: int = 16000) -> SpanResult:
    """Segments of one source from its per-frame probabilities and its audio (used for energy)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1:
        raise ValueError(f"probs must be 1-D (one value per frame), got shape {probs.shape}")
    duration_s = audio.size / sample_rate
    run_starts, run_ends = speech_runs(probs, cfg, frame_s)
    starts_s = np.minimum(run_starts * frame_s, duration_s)
    ends_s = np.minimum(run_ends * frame_s, duration_s)
    starts_s, ends_s = pad_spans(starts_s, ends_s, cfg.pad_s, duration_s)
    pieces: list[tuple[float, float]] = []
    for start, end in merge_close(starts_s, ends_s, cfg.merge_gap_s, cfg.max_segment_s):
        if end - start > cfg.max_segment_s + _EPS_S:
            pieces.extend(split_at_quietest_point(audio, start, end, cfg, sample_rate))
        else:
            pieces.append((start, end))
    spans = np.array([p for p in pieces if p[1] - p[0] >= cfg.min_segment_s - _EPS_S],
                     dtype=np.float64).reshape(-1, 2)
    starts_s, ends_s = spans[:, 0].copy(), spans[:, 1].copy()

    above = probs >= cfg.threshold
    first, stop = frames_in_spans(probs.size, frame_s, starts_s, ends_s)
    above_sums = np.concatenate(([0], np.cumsum(above)))
    counts = stop - first
    segment_ratios = np.divide(above_sums[stop] - above_sums[first], counts,
                               out=np.zeros(counts.size), where=counts > 0)
    covered = np.zeros(probs.size + 1, dtype=np.int64)
    np.add.at(covered, first, 1)
    np.add.at(covered, stop, -1)
    speech = hysteresis_mask(probs, cfg.threshold)
    dropped_frames = np.count_nonzero(speech & (np.cumsum(covered[:-1]) == 0))
    return SpanResult(
        starts_s=starts_s,
        ends_s=ends_s,
        speech_ratio=float(above.mean()) if probs.size else 0.0,
        segment_speech_ratios=segment_ratios,
        dropped_s=float(dropped_frames * frame_s),
    )
