"""Frame states of a Whisper encoder (faster-whisper / CTranslate2): the understanding model's
view of *what* was said and *how*, without the words.

One 30 s window per clip (longer clips use their first 30 s: attribute heads and the content
check need a representative stretch, not the whole clip). States are 50 frames/s, ``d_model``
wide (384 for tiny); only the frames that cover real audio are returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from audiomill.models.threads import one_blas_thread

SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 30 * SAMPLE_RATE
STATE_FPS = 50  # encoder frames per second
MIN_SAMPLES = SAMPLE_RATE // 10


class WhisperStates:
    """Batched encoder states from a loaded ``faster_whisper.WhisperModel``."""

    fps = STATE_FPS

    def __init__(self, whisper_model) -> None:  # noqa: ANN001 - faster_whisper.WhisperModel
        self.model = whisper_model

    def encoder_states(self, audio: np.ndarray) -> np.ndarray:
        """(frames, d_model) float32 states of one 16 kHz clip."""
        return self.encoder_states_batch([audio])[0]

    @one_blas_thread
    def encoder_states_batch(self, clips: Sequence[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        from faster_whisper.audio import pad_or_trim

        extractor = self.model.feature_extractor
        out: list[np.ndarray] = []
        for first in range(0, len(clips), batch_size):
            group = [_clip(c) for c in clips[first:first + batch_size]]
            features = np.stack([pad_or_trim(extractor(c)[..., :extractor.nb_max_frames]) for c in group])
            encoded = np.asarray(self.model.encode(features))  # (batch, 1500, d_model)
            for clip, states in zip(group, encoded):
                frames = max(1, min(states.shape[0], math.ceil(clip.size / SAMPLE_RATE * STATE_FPS)))
                out.append(np.ascontiguousarray(states[:frames], dtype=np.float32))
        return out


def _clip(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)[:WINDOW_SAMPLES]
    return audio if audio.size >= MIN_SAMPLES else np.pad(audio, (0, MIN_SAMPLES - audio.size))


def pooled(states: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over frames: one fixed-size vector (2 * d_model)."""
    return np.concatenate([states.mean(axis=0), states.std(axis=0)]).astype(np.float32)
