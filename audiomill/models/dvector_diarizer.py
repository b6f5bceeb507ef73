"""The embedded default diarizer: Resemblyzer d-vectors of sliding windows + agglomerative clustering.

Why: the spectral-statistics fallback (``diarization.FallbackDiarizer``) cannot tell two voices
of one gender apart and never cuts inside a VAD span it labels as one speaker. Here every VAD
span is covered by ``window_s`` windows every ``hop_s`` (a span shorter than a window is one
window of its own length), each embedded by the pretrained speaker encoder
(``models/speaker_encoder.py``, weights from the ``resemblyzer`` wheel; one torch thread).

Clustering: Ward agglomerative clustering of the unit d-vectors, cut at the most clusters whose
mean vectors all lie ``threshold`` apart (or at ``num_speakers``); clusters under ``min_cluster_windows`` /
``min_cluster_share`` of the windows join the nearest larger one (windows that straddle a change
are not speakers); then every window is re-assigned to its nearest centroid and isolated label
flips inside a span are smoothed. Sources with more than ``max_cluster_windows`` windows are
clustered on an even subsample and the rest assigned to the nearest centroid (linkage memory
grows with the square of the window count).

Turns change wherever the label changes, also inside one continuous VAD span. The change point
is refined at ``refine_hop_s`` resolution: short ``refine_window_s`` windows around the coarse
change are scored by how much closer they sit to one speaker's centroid than the other's, and
the cut goes where the cumulative evidence flips, then moves to the quietest 10 ms frame within
``snap_s``. Deterministic (no random state; fixed thread count).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from audiomill.models.diarization import (SpeakerTurn, absorb_small_clusters, ambiguous_windows,
                                          number_by_first_appearance)
from audiomill.models.speaker_encoder import SpeakerEncoder, normalize_volume, power_mel

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
DVECTOR_VERSION = "resemblyzer-ahc@1"
"""Recorded as ``diar_model`` so labels from different diarizers can be told apart."""
_FRAME_S = 0.01  # one mel frame (hop 160 samples)


@dataclass(frozen=True)
class DvectorOptions:
    """Seconds for windows; ``threshold`` is the euclidean distance between two clusters' mean
    unit d-vectors below which they are one speaker."""

    window_s: float = 1.5
    hop_s: float = 0.5
    threshold: float = 0.33
    num_speakers: int | None = None  # known speaker count: overrides the threshold
    max_speakers: int = 8
    min_cluster_windows: int = 4
    noise_factor: float = 1.0  # windows per independent sample, over window / hop (see _corrected_gaps)
    min_cluster_share: float = 0.05
    max_cluster_windows: int = 2000
    ambiguity_margin: float = 0.05  # (d_other - d_own) / (d_other + d_own) below this: ambiguous
    refine_window_s: float = 0.8
    refine_hop_s: float = 0.1
    refine_reach_s: float = 0.5  # searched on each side of the coarse change
    snap_s: float = 0.1
    pause_s: float = 0.2  # quieter runs at least this long split a VAD span before windowing,
    pause_db: float = 35.0  # "quieter": this many dB under the span's 95th-percentile frame


@functools.cache
def _encoder() -> SpeakerEncoder:
    return SpeakerEncoder()


@dataclass(frozen=True)
class _Windows:
    """Window k covers mel frames [starts[k], starts[k] + lengths[k]) of span ``span_of[k]``."""

    span_of: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray


class DvectorDiarizer:
    """Speaker turns from d-vector windows; same interface as ``FallbackDiarizer``."""

    version = DVECTOR_VERSION

    def __init__(self, options: DvectorOptions | None = None) -> None:
        self.options = options or DvectorOptions()
        self.encoder = _encoder()

    def diarize(self, audio: np.ndarray, speech_spans: list[tuple[float, float]] | None = None
                ) -> list[SpeakerTurn]:
        """Turns inside ``speech_spans`` (seconds; default: the whole audio)."""
        audio = np.asarray(audio, np.float32)
        duration_s = audio.size / SAMPLE_RATE
        spans = [(0.0, duration_s)] if speech_spans is None else speech_spans
        spans = [(max(0.0, a), min(duration_s, b)) for a, b in spans]
        spans = [(a, b) for a, b in spans if b - a >= 0.05]
        if not spans:
            return []
        parents, parts, mels = _split_at_pauses(spans, self._span_mels(audio, spans),
                                                self.options.pause_s, self.options.pause_db)
        windows = self._windows([len(m) for m in mels])
        first_row = np.cumsum([0] + [len(m) for m in mels[:-1]])
        embeddings = self.encoder.embed_windows(np.concatenate(mels), first_row[windows.span_of]
                                                + windows.starts, windows.lengths)
        labels, centroids = self._cluster(embeddings)
        labels = _smooth_runs(labels, windows.span_of)
        ambiguous = ambiguous_windows(embeddings, labels, self.options.ambiguity_margin)
        log.debug("%d windows in %d stretches of %d spans: %d speakers", len(labels), len(parts),
                  len(spans), int(labels.max(initial=0)) + 1)
        inside: list[list[SpeakerTurn]] = [[] for _ in spans]
        per_part = self._turns(parts, mels, windows, labels, ambiguous, centroids)
        for parent, part_turns in zip(parents, per_part):
            inside[parent] += part_turns
        return [turn for span, turns in zip(spans, inside) for turn in _fill_pauses(turns, span)]

    def _span_mels(self, audio: np.ndarray, spans: list[tuple[float, float]]) -> list[np.ndarray]:
        """Power mel per span, volume raised to -30 dBFS by the RMS of all the source's speech."""
        pieces = [audio[int(a * SAMPLE_RATE): int(b * SAMPLE_RATE)] for a, b in spans]
        speech = np.concatenate(pieces).astype(np.float64)
        rms = float(np.sqrt(np.mean(speech ** 2))) if speech.size else 0.0
        return [power_mel(normalize_volume(p, rms))[: max(1, p.size // 160)] for p in pieces]

    def _windows(self, span_frames: list[int]) -> _Windows:
        win = int(round(self.options.window_s / _FRAME_S))
        hop = int(round(self.options.hop_s / _FRAME_S))
        span_of, starts, lengths = [], [], []
        for index, frames in enumerate(span_frames):
            if frames <= win:
                offsets = [0]
            else:
                offsets = list(range(0, frames - win + 1, hop))
                if offsets[-1] + win < frames:
                    offsets.append(frames - win)
            span_of += [index] * len(offsets)
            starts += offsets
            lengths += [min(win, frames)] * len(offsets)
        return _Windows(np.array(span_of), np.array(starts), np.array(lengths))

    def _cluster(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels numbered by first appearance, unit centroids (speakers, 256))."""
        n, opts = len(embeddings), self.options
        if n < 2:
            return np.zeros(n, np.int64), _centroids(embeddings, np.zeros(n, np.int64))
        stride = int(np.ceil(n / opts.max_cluster_windows))
        sample = embeddings[::stride]
        tree = linkage(sample, method="ward", metric="euclidean")
        if opts.num_speakers is not None:
            raw = fcluster(tree, t=min(opts.num_speakers, len(sample)), criterion="maxclust")
        else:
            min_size = max(opts.min_cluster_windows / stride, opts.min_cluster_share * len(sample))
            overlap = opts.noise_factor * max(1.0, opts.window_s / (opts.hop_s * stride))
            raw = _separated_cut(tree, sample, opts.threshold, opts.max_speakers, min_size, overlap)
        sample_labels = np.unique(raw, return_inverse=True)[1]
        centroids = _centroids(sample, sample_labels)
        labels = number_by_first_appearance(np.argmax(embeddings @ centroids.T, axis=1))
        return labels, _centroids(embeddings, labels)

    def _turns(self, spans: list[tuple[float, float]], mels: list[np.ndarray], windows: _Windows,
               labels: np.ndarray, ambiguous: np.ndarray, centroids: np.ndarray
               ) -> list[list[SpeakerTurn]]:
        """Per span, its turns: cut where the label changes, at the refined change point."""
        per_span: list[list[SpeakerTurn]] = []
        for index, (a, b) in enumerate(spans):
            turns: list[SpeakerTurn] = []
            per_span.append(turns)
            rows = np.flatnonzero(windows.span_of == index)
            change = rows[1:][labels[rows[1:]] != labels[rows[:-1]]]
            firsts = [int(rows[0])] + change.tolist()
            ends = change.tolist() + [int(rows[-1]) + 1]
            centres = (windows.starts + windows.lengths / 2) * _FRAME_S
            edges = [a]
            for row in change.tolist():
                coarse = (centres[row - 1] + centres[row]) / 2
                cut = a + self._refine(mels[index], coarse, centroids[labels[row - 1]],
                                       centroids[labels[row]])
                edges.append(min(b, max(edges[-1], cut)))  # close changes never cross
            edges.append(b)
            for k, (first, stop) in enumerate(zip(firsts, ends)):
                lo, hi = round(edges[k], 3), round(edges[k + 1], 3)
                if hi > lo:
                    turns.append(SpeakerTurn(lo, hi, int(labels[first]),
                                             bool(ambiguous[first:stop].mean() > 0.5)))
        return per_span

    def _refine(self, mel: np.ndarray, coarse_s: float, before: np.ndarray, after: np.ndarray) -> float:
        """Change point (seconds from the span start) near ``coarse_s``, at ``refine_hop_s``."""
        opts = self.options
        win = int(round(opts.refine_window_s / _FRAME_S))
        hop = int(round(opts.refine_hop_s / _FRAME_S))
        reach = int(round(opts.refine_reach_s / _FRAME_S))
        centre = int(round(coarse_s / _FRAME_S))
        first = max(0, centre - reach - win // 2)
        last = min(len(mel) - win, centre + reach - win // 2)
        if last <= first:
            return coarse_s
        starts = np.arange(first, last + 1, hop)
        fine = self.encoder.embed_windows(mel, starts, np.full(len(starts), win))
        evidence = fine @ after - fine @ before  # > 0: sounds like the later speaker
        # cut before window k: windows < k vote "before", windows >= k vote "after"
        score = np.concatenate([[0.0], np.cumsum(-evidence)]) + np.concatenate(
            [np.cumsum(evidence[::-1])[::-1], [0.0]])
        cut = int(starts[0] + win // 2 + int(np.argmax(score)) * hop - hop // 2)
        return _quietest_frame(mel, cut, int(round(opts.snap_s / _FRAME_S))) * _FRAME_S


def _separated_cut(tree: np.ndarray, sample: np.ndarray, threshold: float, max_speakers: int,
                   min_size: float, overlap: float) -> np.ndarray:
    """Cluster ids of the Ward tree cut at the most clusters, counted from the root down, whose
    mean d-vectors all sit at least ``threshold`` apart (euclidean); the first cut that fails stops.

    Each cut is polished by a few nearest-mean passes and clusters under ``min_size`` windows are
    absorbed first. Ward merge heights grow with cluster size, so a cut is judged by the distance
    between cluster means instead: averaging removes most of the per-window (phonetic) spread,
    which is what separates two similar voices from one voice split in two. See
    ``_corrected_gaps`` for small clusters.
    """
    best = np.zeros(len(sample), np.int64)
    for k in range(2, min(max_speakers, len(sample)) + 1):
        raw = absorb_small_clusters(sample, fcluster(tree, t=k, criterion="maxclust"), min_size)
        labels = _nearest_mean_passes(sample, np.unique(raw, return_inverse=True)[1])
        count = int(labels.max()) + 1
        if count <= int(best.max()) + 1:
            continue
        if _corrected_gaps(sample, labels, overlap).min() < threshold:
            break
        best = labels
    return best


def _corrected_gaps(sample: np.ndarray, labels: np.ndarray, overlap: float) -> np.ndarray:
    """Distances between cluster means with the sampling noise of each mean taken out.

    Two means of n_a and n_b windows drawn from one voice lie sqrt(s2 * (1/n_a + 1/n_b)) apart
    on average (s2: mean squared distance of a window to its cluster mean); overlapping windows
    are not independent, so each cluster counts as n / ``overlap`` samples. The
    result is sqrt(max(0, gap^2 - that^2)): two few-window halves of one voice stay below the
    threshold, two voices with many windows keep their full distance.
    """
    count = int(labels.max()) + 1
    sizes = np.maximum(1.0, np.bincount(labels, minlength=count) / overlap)
    means = np.stack([sample[labels == v].mean(axis=0) for v in range(count)])
    s2 = float(np.mean(np.sum((sample - means[labels]) ** 2, axis=1)))
    squared = np.sum((means[:, None] - means[None]) ** 2, axis=2)
    noise = s2 * (1.0 / sizes[:, None] + 1.0 / sizes[None])
    upper = np.triu_indices(count, 1)
    return np.sqrt(np.maximum(0.0, squared - noise)[upper])


def _nearest_mean_passes(sample: np.ndarray, labels: np.ndarray, passes: int = 5) -> np.ndarray:
    """k-means refinement (dot product with unit means) of an initial labelling; deterministic."""
    for _ in range(passes):
        moved = np.argmax(sample @ _centroids(sample, labels).T, axis=1)
        moved = np.unique(moved, return_inverse=True)[1]  # a cluster that emptied disappears
        if np.array_equal(moved, labels):
            break
        labels = moved
    return labels


def _split_at_pauses(spans: list[tuple[float, float]], mels: list[np.ndarray], pause_s: float,
                     pause_db: float) -> tuple[list[int], list[tuple[float, float]], list[np.ndarray]]:
    """(parent span, (start_s, end_s), mel) of each stretch of sound between pauses.

    Windows that straddle a pause mostly straddle a speaker change too (people take turns at
    pauses); their d-vectors blend two voices and form clusters of their own.
    """
    parents, parts, pieces = [], [], []
    min_pause = int(round(pause_s / _FRAME_S))
    for index, ((a, _), mel) in enumerate(zip(spans, mels)):
        energy_db = 10.0 * np.log10(mel.sum(axis=1) + 1e-12)
        quiet = energy_db < np.percentile(energy_db, 95) - pause_db
        edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
        loud = np.ones(len(mel), bool)
        for lo, hi in zip(edges[::2], edges[1::2]):
            loud[lo:hi] = hi - lo < min_pause
        bounds = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
        runs = [(int(lo), int(hi)) for lo, hi in zip(bounds[::2], bounds[1::2]) if hi - lo >= 10]
        for lo, hi in runs or [(0, len(mel))]:
            parents.append(index)
            parts.append((a + lo * _FRAME_S, a + hi * _FRAME_S))
            pieces.append(mel[lo:hi])
    return parents, parts, pieces


def _fill_pauses(turns: list[SpeakerTurn], span: tuple[float, float]) -> list[SpeakerTurn]:
    """Turns of one VAD span stretched over its pauses (cut at each pause's middle), so they
    cover the span; neighbours of one speaker are joined."""
    out: list[SpeakerTurn] = []
    for k, turn in enumerate(turns):
        start = round(span[0], 3) if k == 0 else out[-1].end_s
        end = round(span[1], 3) if k + 1 == len(turns) else max(
            turn.end_s, round((turn.end_s + turns[k + 1].start_s) / 2, 3))
        if out and out[-1].speaker == turn.speaker:
            out[-1] = SpeakerTurn(out[-1].start_s, end, turn.speaker, out[-1].overlap or turn.overlap)
        else:
            out.append(SpeakerTurn(start, end, turn.speaker, turn.overlap))
    return out


def _centroids(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    speakers = int(labels.max(initial=0)) + 1
    sums = np.zeros((speakers, embeddings.shape[1]), np.float64)
    np.add.at(sums, labels, embeddings)
    return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)).astype(np.float32)


def _smooth_runs(labels: np.ndarray, span_of: np.ndarray, passes: int = 2) -> np.ndarray:
    """Flip a window whose two neighbours (in the same span) agree with each other, twice."""
    out = labels.copy()
    for _ in range(passes):
        if len(out) < 3:
            break
        same_span = (span_of[:-2] == span_of[1:-1]) & (span_of[1:-1] == span_of[2:])
        flip = same_span & (out[:-2] == out[2:]) & (out[1:-1] != out[:-2])
        out[1:-1][flip] = out[:-2][flip]
    return out


def _quietest_frame(mel: np.ndarray, frame: int, reach: int) -> int:
    """The frame with the least mel energy within ``reach`` frames of ``frame`` (ties: nearest)."""
    lo, hi = max(0, frame - reach), min(len(mel), frame + reach + 1)
    if hi <= lo:
        return frame
    energy = np.log(mel[lo:hi].sum(axis=1) + 1e-10)
    distance = np.abs(np.arange(lo, hi) - frame)
    return int(lo + np.lexsort((distance, np.round(energy, 1)))[0])
