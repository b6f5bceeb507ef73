"""Vectorized MinHash over uint32 token sets, for whole segments and for time windows.

Permutation i maps a token x to ``(a_i * x + b_i) mod 2**64 >> 32`` (multiply-add-shift, a
2-universal family for 32-bit keys; ``a_i`` odd). A signature holds, per permutation, the minimum
over the set; the fraction of equal entries between two signatures estimates their Jaccard
similarity. An empty set has the all-``EMPTY`` signature, which matches nothing (see ``similarity``).
"""

from __future__ import annotations

import numpy as np

EMPTY = np.uint32(0xFFFFFFFF)


class MinHasher:
    """``num_perm`` fixed permutations drawn from ``seed``; the same seed gives the same signatures."""

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        if num_perm < 1:
            raise ValueError("num_perm must be at least 1")
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.a = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)

    def permute(self, tokens: np.ndarray) -> np.ndarray:
        """(tokens, num_perm) uint32 permuted values."""
        x = np.asarray(tokens, dtype=np.uint64)[:, None]
        return ((x * self.a + self.b) >> np.uint64(32)).astype(np.uint32)

    def signature(self, tokens: np.ndarray) -> np.ndarray:
        """(num_perm,) uint32 signature of the token set."""
        if len(tokens) == 0:
            return np.full(self.num_perm, EMPTY, np.uint32)
        return self.permute(np.unique(tokens)).min(axis=0)

    def group_signatures(self, tokens: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
        """(n_groups, num_perm) signatures of the tokens in each group (ids 0..n_groups-1)."""
        out = np.full((n_groups, self.num_perm), EMPTY, np.uint32)
        if len(tokens) == 0:
            return out
        order = np.argsort(groups, kind="stable")
        groups = np.asarray(groups)[order]
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        out[groups[starts]] = np.minimum.reduceat(self.permute(np.asarray(tokens)[order]), starts, axis=0)
        return out


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard along the last axis; entries where either side is empty never count."""
    equal = (a == b) & (a != EMPTY)
    return equal.mean(axis=-1)


def pairwise_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) estimated Jaccard between every row of ``a`` and every row of ``b``."""
    return similarity(a[:, None, :], b[None, :, :])
