"""Content distance between an original clip and its re-synthesis, in the model's own space.

Two measures, both over representations that ignore who speaks more than what is said:

- ``state_dtw_distance``: dynamic time warping over frame states (e.g. Whisper encoder states),
  cosine cost after removing each clip's mean state (the speaker/channel offset), symmetric steps
  (diagonal weight 2), normalised by ``n + m``: 0 for identical sequences, ~1 for unrelated ones;
- ``token_edit_distance`` (the tokenizer's ``compare`` module): Levenshtein distance between
  semantic-token sequences (consecutive repeats collapsed) over the longer length, 0..1.

Both compare the re-synthesis with the ORIGINAL audio, so a wrong transcript spoken clearly does
not agree with itself.
"""

from __future__ import annotations

import re

import numpy as np

from audiomill.models.tokenizer.compare import dtw_accumulate, edit_distance, token_edit_distance

__all__ = ["state_dtw_distance", "dtw_cost", "token_edit_distance", "word_error_rate", "normalize_words"]


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
    """Total cost of the best monotone path with steps (1,0), (0,1) weight 1 and (1,1) weight 2."""
    return float(dtw_accumulate(cost)[cost.shape[0], cost.shape[1]])


def normalize_words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", (text or "").lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word edits / reference words on lowercased, punctuation-free words (1.0 for an empty ref
    with a non-empty hypothesis)."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    vocab: dict[str, int] = {}
    ids = lambda words: [vocab.setdefault(w, len(vocab)) for w in words]  # noqa: E731
    return edit_distance(np.asarray(ids(ref)), np.asarray(ids(hyp))) / max(len(ref), 1) if (ref or hyp) else 0.0
