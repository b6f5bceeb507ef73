"""One k-means codebook over standardised encoder states: the semantic token vocabulary.

States are z-scored per dimension (mean/std of the training frames) before clustering, so no
single high-variance dimension dominates the distances. Fitting uses faiss k-means with a fixed
seed and thread count, so the same frames give the same codebook; assignment is a plain numpy
nearest-centroid search (ties go to the lowest id), so tokens do not depend on faiss at all.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from audiomill.models.threads import one_blas_thread

logger = logging.getLogger(__name__)

_ASSIGN_CHUNK = 16_384  # frames per distance matrix block (bounded memory: chunk x K floats)


@dataclass(frozen=True)
class Codebook:
    """``centroids`` (K, D) in standardised space; ``mean``/``std`` (D,) map raw states into it."""

    centroids: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @property
    def size(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def bits_per_token(self) -> float:
        return math.log2(self.size)

    @one_blas_thread
    def assign(self, states: np.ndarray) -> np.ndarray:
        """Nearest centroid id (int32) of each (frames, D) state row."""
        out = np.empty(states.shape[0], np.int32)
        norms = (self.centroids.astype(np.float64) ** 2).sum(axis=1)
        for start in range(0, states.shape[0], _ASSIGN_CHUNK):
            z = (states[start:start + _ASSIGN_CHUNK].astype(np.float64) - self.mean) / self.std
            distances = norms[None, :] - 2.0 * (z @ self.centroids.T.astype(np.float64))
            out[start:start + _ASSIGN_CHUNK] = np.argmin(distances, axis=1)
        return out

    def save(self, path: str) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, centroids=self.centroids, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path: str) -> Codebook:
        with np.load(path) as data:
            return cls(data["centroids"].astype(np.float32), data["mean"].astype(np.float64),
                       data["std"].astype(np.float64))


def fit_codebook(frames: np.ndarray, size: int, seed: int = 0, iterations: int = 25,
                 threads: int = 1) -> Codebook:
    """k-means with ``size`` centroids over (N, D) raw states; N must be at least ``size``."""
    import faiss

    if frames.shape[0] < size:
        raise ValueError(f"{frames.shape[0]} training frames cannot fit {size} codes; "
                         f"use more audio or a smaller codebook")
    mean = frames.mean(axis=0, dtype=np.float64)
    std = frames.std(axis=0, dtype=np.float64) + 1e-6
    z = np.ascontiguousarray(((frames - mean) / std).astype(np.float32))
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        kmeans = faiss.Kmeans(z.shape[1], size, niter=iterations, seed=seed, verbose=False,
                              max_points_per_centroid=max(256, z.shape[0] // size + 1))
        kmeans.train(z)
    finally:
        faiss.omp_set_num_threads(previous)
    logger.info("k-means: %d frames -> %d codes, objective %.1f", z.shape[0], size, kmeans.obj[-1])
    return Codebook(kmeans.centroids.astype(np.float32), mean, std)
