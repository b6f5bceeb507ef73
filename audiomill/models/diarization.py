"""Speaker diarization: an embedded fallback (no weights); pyannote.audio is in ``pyannote_backend``.

Both take 16 kHz mono float32 audio already in memory (no re-decoding) and return speaker turns
in seconds. Speaker ids are small integers per source, numbered by first appearance.

The fallback embeds overlapping windows of VAD speech with spectral statistics
(``speaker_features``), standardises them within the source, clusters them agglomeratively
(cosine distance, average linkage) with a distance threshold or a given number of speakers, and
turns runs of equal labels into turns. It has no overlap detector: ``overlap`` marks turns whose
windows sit about as close to another speaker's centroid as to their own, which happens in
overlapped speech and in unreliable labels alike, so treat it as "ambiguous".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from audiomill.models.speaker_features import FRAME_S, frame_features, window_embeddings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
FALLBACK_VERSION = "spectral-ahc@1"
"""Recorded with fallback labels so rounds of the self-labeling loop can be told apart."""


class DiarizerUnavailableError(RuntimeError):
    """The configured diarization backend cannot run here; the message says what to install."""


@dataclass(frozen=True)
class SpeakerTurn:
    """Speaker ``speaker`` talks from ``start_s`` to ``end_s``; ``overlap`` as described above."""

    start_s: float
    end_s: float
    speaker: int
    overlap: bool = False


@dataclass(frozen=True)
class FallbackOptions:
    """Window lengths in seconds; ``threshold`` is a cosine distance between cluster averages."""

    window_s: float = 1.5
    hop_s: float = 0.5
    threshold: float = 0.95
    num_speakers: int | None = None  # known speaker count: overrides the threshold
    max_speakers: int = 8
    min_speakers_spread: float = 0.285  # mean within-source feature spread (fixed units) below
    # which a source is one speaker, before standardisation can amplify noise into clusters
    min_cluster_windows: int = 3  # smaller clusters (and below min_cluster_share of windows)
    min_cluster_share: float = 0.05  # are absorbed by the nearest larger one
    ambiguity_margin: float = 0.1  # (d_other - d_own) / (d_other + d_own) below this: ambiguous


class FallbackDiarizer:
    """Spectral-statistics embeddings + agglomerative clustering; deterministic, CPU only."""

    version = FALLBACK_VERSION

    def __init__(self, options: FallbackOptions | None = None) -> None:
        self.options = options or FallbackOptions()

    def diarize(self, audio: np.ndarray, speech_spans: list[tuple[float, float]] | None = None
                ) -> list[SpeakerTurn]:
        """Turns inside ``speech_spans`` (seconds; default: the whole audio)."""
        duration_s = audio.size / SAMPLE_RATE
        spans = [(max(0.0, a), min(duration_s, b)) for a, b in (speech_spans or [(0.0, duration_s)])]
        spans = [(a, b) for a, b in spans if b - a >= 0.05]
        if not spans:
            return []
        span_of, starts_s, ends_s = self._windows(spans)
        mfcc, energy_db, f0 = frame_features(audio)
        first = np.clip((starts_s / FRAME_S).astype(np.int64), 0, max(len(mfcc) - 1, 0))
        last = np.clip(np.ceil(ends_s / FRAME_S).astype(np.int64), first + 1, len(mfcc))
        embeddings = window_embeddings(mfcc, energy_db, f0, first, last)
        labels, ambiguous = self._cluster(embeddings)
        labels = _smooth(labels, span_of)
        return _turns(spans, span_of, starts_s, ends_s, labels, ambiguous)

    def _windows(self, spans: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(span index, start_s, end_s) of each window; a short span is one window."""
        win, hop = self.options.window_s, self.options.hop_s
        span_of, starts, ends = [], [], []
        for index, (a, b) in enumerate(spans):
            if b - a <= win:
                offsets = np.array([0.0])
            else:
                offsets = np.arange(0.0, b - a - win + 1e-9, hop)
                if offsets[-1] + win < b - a - hop / 2:
                    offsets = np.append(offsets, b - a - win)
            span_of += [index] * len(offsets)
            starts += (a + offsets).tolist()
            ends += np.minimum(a + offsets + win, b).tolist()
        return np.array(span_of), np.array(starts), np.array(ends)

    def _cluster(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels numbered by first appearance, ambiguous flag) per window."""
        n = len(embeddings)
        if n < 2:
            return np.zeros(n, np.int64), np.zeros(n, bool)
        opts = self.options
        mean, std = embeddings.mean(axis=0), embeddings.std(axis=0)
        scaled = (embeddings - mean) / np.maximum(std, 1e-6)
        if opts.num_speakers is None and float(np.mean(std / _FEATURE_SCALE)) < opts.min_speakers_spread:
            return np.zeros(n, np.int64), np.zeros(n, bool)
        tree = linkage(scaled, method="average", metric="cosine")
        if opts.num_speakers is not None:
            raw = fcluster(tree, t=min(opts.num_speakers, n), criterion="maxclust")
        else:
            raw = fcluster(tree, t=opts.threshold, criterion="distance")
            raw = absorb_small_clusters(scaled, raw, max(opts.min_cluster_windows,
                                                         opts.min_cluster_share * n))
            if len(np.unique(raw)) > opts.max_speakers:
                raw = fcluster(tree, t=opts.max_speakers, criterion="maxclust")
        labels = number_by_first_appearance(raw)
        return labels, ambiguous_windows(scaled, labels, opts.ambiguity_margin)


def number_by_first_appearance(raw: np.ndarray) -> np.ndarray:
    """Relabel cluster ids 0, 1, ... in the order they first occur."""
    values, first_seen, inverse = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.empty(len(values), np.int64)
    rank[np.argsort(first_seen)] = np.arange(len(values))
    return rank[inverse].astype(np.int64)


_FEATURE_SCALE = np.concatenate([np.full(23, 4.0), np.full(23, 2.0), [0.3, 0.1]]).astype(np.float32)
"""Typical within-source feature spread (MFCC means, MFCC stds, log-f0 median and spread)."""


def absorb_small_clusters(scaled: np.ndarray, raw: np.ndarray, min_size: float) -> np.ndarray:
    """Move windows of clusters smaller than ``min_size`` to the nearest larger cluster.

    Windows that straddle a speaker change or a pause form small clusters of their own; they are
    not extra speakers.
    """
    values, counts = np.unique(raw, return_counts=True)
    large = values[counts >= min_size]
    if len(large) == 0 or len(large) == len(values):
        return raw
    unit = scaled / np.maximum(np.linalg.norm(scaled, axis=1, keepdims=True), 1e-9)
    centroids = np.stack([unit[raw == v].mean(axis=0) for v in large])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    nearest = large[np.argmax(unit @ centroids.T, axis=1)]
    return np.where(np.isin(raw, large), raw, nearest)


def ambiguous_windows(scaled: np.ndarray, labels: np.ndarray, margin: float) -> np.ndarray:
    """Windows about as close (cosine) to another speaker's centroid as to their own."""
    speakers = int(labels.max()) + 1
    if speakers < 2:
        return np.zeros(len(labels), bool)
    unit = scaled / np.maximum(np.linalg.norm(scaled, axis=1, keepdims=True), 1e-9)
    centroids = np.stack([unit[labels == s].mean(axis=0) for s in range(speakers)])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    distance = 1.0 - unit @ centroids.T
    own = distance[np.arange(len(labels)), labels]
    distance[np.arange(len(labels)), labels] = np.inf
    other = distance.min(axis=1)
    return (other - own) / np.maximum(other + own, 1e-9) < margin


def _smooth(labels: np.ndarray, span_of: np.ndarray) -> np.ndarray:
    """Flip a single window whose two neighbours (in the same span) agree with each other."""
    out = labels.copy()
    if len(labels) >= 3:
        same_span = (span_of[:-2] == span_of[1:-1]) & (span_of[1:-1] == span_of[2:])
        flip = same_span & (labels[:-2] == labels[2:]) & (labels[1:-1] != labels[:-2])
        out[1:-1][flip] = labels[:-2][flip]
    return out


def _turns(spans: list[tuple[float, float]], span_of: np.ndarray, starts_s: np.ndarray,
           ends_s: np.ndarray, labels: np.ndarray, ambiguous: np.ndarray) -> list[SpeakerTurn]:
    """Each span cut where the label changes, at the midpoint between the two window centres."""
    centres = (starts_s + ends_s) / 2
    turns: list[SpeakerTurn] = []
    for index, (a, b) in enumerate(spans):
        rows = np.flatnonzero(span_of == index)
        cut = rows[1:][labels[rows[1:]] != labels[rows[:-1]]]
        edges = [a] + [float((centres[r - 1] + centres[r]) / 2) for r in cut] + [b]
        firsts = [rows[0]] + cut.tolist()
        for k, row in enumerate(firsts):
            piece = rows[(rows >= row) & (rows < (firsts[k + 1] if k + 1 < len(firsts) else rows[-1] + 1))]
            turns.append(SpeakerTurn(round(edges[k], 3), round(edges[k + 1], 3), int(labels[row]),
                                     bool(ambiguous[piece].mean() > 0.5)))
    return turns


def turns_from_labeled(raw: list[tuple[float, float, str]],
                       speech_spans: list[tuple[float, float]] | None = None) -> list[SpeakerTurn]:
    """Number labels by first appearance, mark turns overlapping another speaker, clip to spans."""
    raw = sorted(raw)
    ids: dict[str, int] = {}
    for _, _, label in raw:
        ids.setdefault(label, len(ids))
    turns = []
    for start, end, label in raw:
        overlap = any(o_label != label and o_start < end and start < o_end
                      for o_start, o_end, o_label in raw)
        pieces = [(max(start, a), min(end, b)) for a, b in speech_spans] if speech_spans else [(start, end)]
        turns += [SpeakerTurn(round(a, 3), round(b, 3), ids[label], overlap) for a, b in pieces if b > a]
    return sorted(turns, key=lambda t: (t.start_s, t.speaker))


@dataclass(frozen=True)
class SpeakerSpans:
    """VAD spans cut at speaker changes: parallel lists, one entry per new span."""

    starts_s: list[float]
    ends_s: list[float]
    parents: list[int]  # index of the VAD span each piece came from
    speakers: list[int]
    overlaps: list[bool]


def split_spans_at_turns(starts_s: list[float], ends_s: list[float], turns: list[SpeakerTurn],
                         min_piece_s: float = 1.0) -> SpeakerSpans:
    """Cut each span where the speaker changes; each piece gets the speaker covering most of it.

    A piece shorter than ``min_piece_s`` (a one-word reply, or speech no turn covers) joins its
    longer neighbour in the same span, so a segment may hold up to ``min_piece_s`` of another
    voice. A piece is ``overlap`` when a flagged turn or two speakers' turns cover half of it.
    """
    out = SpeakerSpans([], [], [], [], [])
    for parent, (a, b) in enumerate(zip(starts_s, ends_s)):
        inside = [t for t in turns if t.start_s < b and a < t.end_s]
        edges = sorted({a, b, *(x for t in inside for x in (t.start_s, t.end_s) if a < x < b)})
        pieces = [_label_piece(lo, hi, inside) for lo, hi in zip(edges[:-1], edges[1:])]
        for lo, hi, speaker, overlap in _merge_pieces(pieces, min_piece_s):
            out.starts_s.append(lo)
            out.ends_s.append(hi)
            out.parents.append(parent)
            out.speakers.append(speaker)
            out.overlaps.append(overlap)
    return out


def _label_piece(lo: float, hi: float, turns: list[SpeakerTurn]) -> list:
    cover: dict[int, float] = {}
    flagged = 0.0
    for t in turns:
        seconds = min(hi, t.end_s) - max(lo, t.start_s)
        if seconds > 0:
            cover[t.speaker] = cover.get(t.speaker, 0.0) + seconds
            flagged += seconds if t.overlap else 0.0
    speaker = max(cover, key=lambda s: (cover[s], -s)) if cover else -1
    overlap = flagged >= (hi - lo) / 2 or sum(v >= (hi - lo) / 2 for v in cover.values()) >= 2
    return [lo, hi, speaker, overlap]


def _merge_pieces(pieces: list[list], min_piece_s: float) -> list[list]:
    """Join runs of one speaker, then fold short or unlabeled pieces into a longer neighbour."""
    merged: list[list] = []
    for piece in pieces:
        if merged and merged[-1][2] == piece[2]:
            merged[-1][1], merged[-1][3] = piece[1], merged[-1][3] or piece[3]
        else:
            merged.append(list(piece))
    while len(merged) > 1:
        lengths = [p[1] - p[0] if p[2] >= 0 else 0.0 for p in merged]
        i = int(np.argmin(lengths))
        if lengths[i] >= min_piece_s:
            break
        left = merged[i - 1][1] - merged[i - 1][0] if i > 0 else -1.0
        right = merged[i + 1][1] - merged[i + 1][0] if i + 1 < len(merged) else -1.0
        j = i - 1 if left >= right else i + 1
        lo, hi = min(merged[i][0], merged[j][0]), max(merged[i][1], merged[j][1])
        merged[min(i, j)] = [lo, hi, merged[j][2], merged[j][3]]
        del merged[max(i, j)]
        if min(i, j) > 0 and merged[min(i, j) - 1][2] == merged[min(i, j)][2]:
            merged[min(i, j) - 1][1] = merged[min(i, j)][1]
            del merged[min(i, j)]
        elif min(i, j) + 1 < len(merged) and merged[min(i, j) + 1][2] == merged[min(i, j)][2]:
            merged[min(i, j)][1] = merged[min(i, j) + 1][1]
            del merged[min(i, j) + 1]
    if merged and merged[0][2] < 0:
        merged[0][2] = 0
    return merged
