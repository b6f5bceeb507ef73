"""Speaker embeddings for the understanding model: the tokenizer's Resemblyzer d-vector encoder.

One encoder per process (256-dim, L2-normalised; weights from the ``resemblyzer`` wheel, read
without importing resemblyzer itself). Cosine similarity compares voices.
"""

from __future__ import annotations

import functools

import numpy as np

from audiomill.models.speaker_encoder import EMBEDDING_DIM, SpeakerEncoder, cosine_similarity

MODEL_ID = "resemblyzer-0.1.4"
MIN_SAMPLES = 1600  # 0.1 s


@functools.cache
def _encoder() -> SpeakerEncoder:
    return SpeakerEncoder()


def speaker_embedding(audio: np.ndarray) -> np.ndarray:
    """One unit-norm embedding (256,) of a 16 kHz clip; zeros for silence or under 0.1 s."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size < MIN_SAMPLES or not np.any(audio):
        return np.zeros(EMBEDDING_DIM, np.float32)
    return _encoder().embed(audio)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; 0 when either embedding is all zeros."""
    return cosine_similarity(a, b) if np.any(a) and np.any(b) else 0.0
