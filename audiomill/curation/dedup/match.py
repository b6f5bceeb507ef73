"""Verify candidate pairs: how much of each segment's audio is found in the other.

Coverage of A in B is the fraction of A's windows whose best match among B's windows has an
estimated Jaccard of at least ``window_threshold``. Both coverages at least ``coverage`` means
near-duplicates (re-encode, resample, gain, noise, small trims); only A's means A is contained in
B (an excerpt, or a clip inside a longer recording).
"""

from __future__ import annotations

import enum

import numpy as np

from audiomill.curation.dedup.minhash import pairwise_similarity, similarity


class Relation(str, enum.Enum):
    SAME = "same"
    A_IN_B = "a_in_b"
    B_IN_A = "b_in_a"


def coverage(windows_a: np.ndarray, windows_b: np.ndarray, window_threshold: float) -> tuple[float, float, float]:
    """(coverage of A in B, coverage of B in A, best window similarity)."""
    if len(windows_a) == 0 or len(windows_b) == 0:
        return 0.0, 0.0, 0.0
    sims = pairwise_similarity(windows_a, windows_b)
    return (float((sims.max(axis=1) >= window_threshold).mean()),
            float((sims.max(axis=0) >= window_threshold).mean()), float(sims.max()))


def audio_relation(windows_a: np.ndarray, windows_b: np.ndarray, window_threshold: float,
                   min_coverage: float) -> Relation | None:
    cov_a, cov_b, _ = coverage(windows_a, windows_b, window_threshold)
    if cov_a >= min_coverage and cov_b >= min_coverage:
        return Relation.SAME
    if cov_a >= min_coverage:
        return Relation.A_IN_B
    if cov_b >= min_coverage:
        return Relation.B_IN_A
    return None


def text_relation(sig_a: np.ndarray | None, sig_b: np.ndarray | None, threshold: float) -> Relation | None:
    if sig_a is None or sig_b is None:
        return None
    return Relation.SAME if float(similarity(np.asarray(sig_a), np.asarray(sig_b))) >= threshold else None
