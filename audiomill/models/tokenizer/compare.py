"""Distances between two utterances in token space and in encoder-state space.

Used to check re-synthesis against the original (self-labeling rounds) and to test that tokens
carry *what was said*: the same sentence in two voices should be closer than two sentences in one.
"""

from __future__ import annotations

import numpy as np


def collapse_repeats(tokens: np.ndarray) -> np.ndarray:
    """Drop consecutive duplicates (``5 5 7 7 7 5`` -> ``5 7 5``): duration-free unit sequence."""
    tokens = np.asarray(tokens)
    if tokens.size == 0:
        return tokens
    keep = np.concatenate([[True], tokens[1:] != tokens[:-1]])
    return tokens[keep]


def edit_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Levenshtein distance between two integer sequences (one numpy row per step of ``a``)."""
    a, b = np.asarray(a), np.asarray(b)
    previous = np.arange(b.size + 1)
    for i in range(1, a.size + 1):
        substitute = previous[:-1] + (b != a[i - 1])
        current = np.empty_like(previous)
        current[0] = i
        current[1:] = np.minimum(substitute, previous[1:] + 1)
        current = np.minimum.accumulate(current - np.arange(b.size + 1)) + np.arange(b.size + 1)
        previous = current
    return int(previous[-1])


def token_edit_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Edit distance of the repeat-collapsed sequences over the longer one's length (0..1)."""
    ca, cb = collapse_repeats(a), collapse_repeats(b)
    longest = max(ca.size, cb.size)
    return edit_distance(ca, cb) / longest if longest else 0.0


def state_dtw_distance(a_states: np.ndarray, b_states: np.ndarray) -> float:
    """Mean cosine distance along the best DTW path between two (frames, dim) state sequences.

    Normalised by the path length, so utterances of different durations compare; 0 = identical.
    """
    if len(a_states) == 0 or len(b_states) == 0:
        return 1.0
    a = a_states / (np.linalg.norm(a_states, axis=1, keepdims=True) + 1e-9)
    b = b_states / (np.linalg.norm(b_states, axis=1, keepdims=True) + 1e-9)
    cost = 1.0 - a @ b.T
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1))
    total[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            options = (total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
            best = int(np.argmin(options))
            previous = [(i - 1, j - 1), (i - 1, j), (i, j - 1)][best]
            total[i, j] = cost[i - 1, j - 1] + options[best]
            steps[i, j] = steps[previous] + 1
    return float(total[n, m] / steps[n, m])


def dtw_accumulate(cost: np.ndarray) -> np.ndarray:
    """(n + 1, m + 1) accumulated costs of the best monotone paths into each cell of ``cost``.

    Steps (1,0), (0,1) weigh a cell once and (1,1) twice (so the diagonal is no shortcut);
    vectorised over anti-diagonals: the cells with ``i + j = k`` depend only on diagonals k-1, k-2.
    """
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        c = cost[i - 1, j - 1]
        acc[i, j] = np.minimum(np.minimum(acc[i - 1, j] + c, acc[i, j - 1] + c), acc[i - 1, j - 1] + 2 * c)
    return acc


def dtw_path(cost: np.ndarray) -> np.ndarray:
    """(steps, 2) index pairs of the cheapest ``dtw_accumulate`` path from (0, 0) to the last
    cell, traced back (ties: diagonal first)."""
    acc = dtw_accumulate(cost)
    path, i, j = [], cost.shape[0], cost.shape[1]
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        c = cost[i - 1, j - 1]
        step = int(np.argmin((acc[i - 1, j - 1] + 2 * c, acc[i - 1, j] + c, acc[i, j - 1] + c)))
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    return np.asarray(path[::-1], np.int64)
