"""Content distance between an original clip and its re-synthesis, in the model's own space.

Two measures, both over representations that ignore who speaks more than what is said:

- ``state_dtw_distance``: dynamic time warping over frame states (e.g. Whisper encoder states),
  cosine cost after removing each clip's mean state (the speaker/channel offset), symmetric steps
  (diagonal weight 2), normalised by ``n + m``: 0 for identical sequences, ~1 for unrelated ones;
- ``token_edit_distance``: Levenshtein distance between semantic-token sequences (consecutive
  repeats collapsed) over the longer length, 0..1.

Both compare the re-synthesis with the ORIGINAL audio, so a wrong transcript spoken clearly does
not agree with itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


def _normalised(states: np.ndarray) -> np.ndarray:
    x = np.asarray(states, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)


def state_dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric DTW cost over (frames, dim) states, per unit of ``len(a) + len(b)``."""
    if len(a) == 0 or len(b) == 0:
        return float("inf")
    cost = 1.0 - _normalised(a) @ _normalised(b).T
    return float(dtw_cost(cost) / (cost.shape[0] + cost.shape[1]))


def dtw_cost(cost: np.ndarray) -> float:
    """Total cost of the best monotone path with steps (1,0), (0,1) weight 1 and (1,1) weight 2.

    Vectorised over anti-diagonals: the cells with ``i + j = k`` depend only on diagonals k-1, k-2.
    """
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        c = cost[i - 1, j - 1]
        acc[i, j] = np.minimum(np.minimum(acc[i - 1, j] + c, acc[i, j - 1] + c), acc[i - 1, j - 1] + 2 * c)
    return float(acc[n, m])


def collapse_repeats(tokens: Sequence[int]) -> list[int]:
    out: list[int] = []
    for t in tokens:
        if not out or out[-1] != t:
            out.append(int(t))
    return out


def levenshtein(x: Sequence[int], y: Sequence[int]) -> int:
    """Edit distance (unit costs), one numpy row per element of ``x``."""
    y_arr = np.asarray(list(y), dtype=np.int64)
    ramp = np.arange(1, len(y_arr) + 1)
    previous = np.arange(len(y_arr) + 1)
    for i, token in enumerate(x, start=1):
        best = np.minimum(previous[:-1] + (y_arr != token), previous[1:] + 1)
        current = np.empty_like(previous)
        current[0] = i
        # insertions run left to right: current[j] = min_k<=j (best[k] + j - k), and i + j
        current[1:] = np.minimum(np.minimum.accumulate(best - ramp) + ramp, i + ramp)
        previous = current
    return int(previous[-1])


def token_edit_distance(a: Sequence[int], b: Sequence[int]) -> float:
    """Levenshtein distance of the repeat-collapsed sequences / the longer one's length (0..1)."""
    x, y = collapse_repeats(a), collapse_repeats(b)
    return levenshtein(x, y) / max(len(x), len(y)) if (x or y) else 0.0


def normalize_words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", (text or "").lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word edits / reference words on lowercased, punctuation-free words (1.0 for an empty ref
    with a non-empty hypothesis)."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    vocab: dict[str, int] = {}
    ids = lambda words: [vocab.setdefault(w, len(vocab)) for w in words]  # noqa: E731
    return levenshtein(ids(ref), ids(hyp)) / max(len(ref), 1) if (ref or hyp) else 0.0
