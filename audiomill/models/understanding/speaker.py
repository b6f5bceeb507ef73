"""Speaker embeddings from Resemblyzer's shipped d-vector encoder (Apache-2.0, ~17 MB in the wheel).

256-dim, L2-normalised; cosine similarity compares voices. The encoder loads once per process.
"""

from __future__ import annotations

import functools

import numpy as np

EMBEDDING_DIM = 256
MODEL_ID = "resemblyzer-0.1.4"


class SpeakerEncoderMissing(RuntimeError):
    """Resemblyzer is not installed."""


@functools.cache
def _encoder():  # noqa: ANN202 - resemblyzer.VoiceEncoder
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as err:
        raise SpeakerEncoderMissing("speaker embeddings need `pip install --no-deps resemblyzer==0.1.4 "
                                    "librosa webrtcvad-wheels` (its weights ship in the wheel)") from err
    import torch

    torch.set_num_threads(1)
    return VoiceEncoder("cpu", verbose=False)


def speaker_embedding(audio: np.ndarray) -> np.ndarray:
    """One L2-normalised embedding (256,) for a 16 kHz clip (peak-normalised first)."""
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.abs(audio).max(initial=0.0))
    if peak <= 0 or audio.size < 1600:
        return np.zeros(EMBEDDING_DIM, np.float32)
    embedding = _encoder().embed_utterance(audio / peak * 0.9)
    return np.asarray(embedding, dtype=np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0
