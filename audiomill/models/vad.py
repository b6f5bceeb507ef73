"""Silero VAD through its *sequence* ONNX export, run with onnxruntime only (no torch).

The sequence model takes a block of frames at once, each frame being 512 new samples of 16 kHz
audio prefixed by the last 64 samples of the previous frame, and carries the LSTM state (h, c)
between blocks. One ONNX call per block of up to ``max_frames`` frames (1024 frames = 32.8 s)
keeps almost all time inside onnxruntime kernels, which release the GIL.

By default the graph runs as rebuilt by :mod:`audiomill.models.vad_graph` (its convolutions as
matrix products over all frames of a block, ~3x faster, equal to float32 rounding);
``graph="stock"`` runs the shipped file as it is.

Batching across sources does not pay: the LSTM runs over the frames of one source as its
sequence, and a batch of sources measured slower than the same sources one after another.
``speech_probabilities_batch`` therefore runs sources in turn, each in blocks as large as
``max_frames`` allows.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from audiomill.config import MODEL_CACHE_DIR

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE  # 0.032 s
CONTEXT_SAMPLES = 64
STATE_SHAPE = (1, 1, 128)
MODEL_FILE = "silero_vad_16k_sequence.onnx"

GRAPHS = ("gemm", "stock")

__all__ = ["CONTEXT_SAMPLES", "FRAME_S", "FRAME_SAMPLES", "GRAPHS", "MODEL_FILE", "SAMPLE_RATE",
           "ModelNotFoundError", "SileroVad", "default_model_path"]


class ModelNotFoundError(FileNotFoundError):
    """The model weights are not at the expected local path; the message names that path."""


def default_model_path() -> str:
    """Path of the sequence model inside the installed silero-vad package.

    Found with ``importlib.util.find_spec``, which locates the package without executing it:
    ``importlib.resources.files("silero_vad")`` would import ``silero_vad``, which imports torch.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"silero-vad is not installed, so {MODEL_FILE} (expected at "
            f"<site-packages>/silero_vad/data/{MODEL_FILE}) is missing; run `pip install silero-vad`")
    return str(Path(list(spec.submodule_search_locations)[0]) / "data" / MODEL_FILE)


def _silero_version() -> str:
    try:
        return importlib.metadata.version("silero-vad")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def frame_blocks(audio: np.ndarray, max_frames: int) -> Iterator[np.ndarray]:
    """Yield contiguous float32 blocks of shape (frames, 64 + 512) covering ``audio``.

    Each frame is prefixed with the last 64 samples of the previous frame (zeros before the
    first); the last frame is zero-padded to 512 samples, as silero-vad does.
    """
    frame_count = -(-audio.size // FRAME_SAMPLES)
    window = CONTEXT_SAMPLES + FRAME_SAMPLES
    for first in range(0, frame_count, max_frames):
        frames = min(max_frames, frame_count - first)
        lo = first * FRAME_SAMPLES - CONTEXT_SAMPLES
        hi = (first + frames) * FRAME_SAMPLES
        span = np.zeros(hi - lo, dtype=np.float32)
        src = audio[max(lo, 0):min(hi, audio.size)]
        span[max(-lo, 0):max(-lo, 0) + src.size] = src
        view = np.lib.stride_tricks.sliding_window_view(span, window)[::FRAME_SAMPLES]
        yield np.ascontiguousarray(view)


class SileroVad:
    """Per-frame speech probabilities (one per 512 samples = 32 ms) for 16 kHz mono float32 audio.

    ``threads`` sets onnxruntime's intra-op threads; inter-op threads stay at 1 so that one
    worker uses the CPUs it declared. ``max_frames`` bounds one ONNX call (memory ~2.3 KB per
    frame); results do not depend on it. ``graph`` picks the rebuilt graph (``gemm``, cached in
    ``cache_dir``) or the shipped one (``stock``); see the module docstring.
    """

    def __init__(self, model_path: str | None = None, threads: int = 1, max_frames: int = 1024,
                 graph: str = "gemm", cache_dir: str = MODEL_CACHE_DIR):
        if graph not in GRAPHS:
            raise ValueError(f"graph must be one of {GRAPHS}, got {graph!r}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        path = model_path or default_model_path()
        if not Path(path).is_file():
            raise ModelNotFoundError(
                f"silero-vad sequence model not found at {path}; it ships in the silero-vad "
                f"package (`pip install silero-vad`)")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1

        def session(source: str | bytes):  # noqa: ANN202 - an onnxruntime InferenceSession
            return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])

        if graph == "stock":
            self.session = session(path)
        else:
            from audiomill.models.vad_graph import cached_gemm_model

            try:
                self.session = session(cached_gemm_model(path, cache_dir))
            except Exception as err:  # noqa: BLE001 - a damaged cache file is rebuilt once
                log.warning("rebuilding the cached silero-vad graph in %s: it did not load (%s)", cache_dir, err)
                self.session = session(cached_gemm_model(path, cache_dir, rebuild=True))
        self.model_path = path
        self.graph = graph
        self.max_frames = max_frames
        self.model_id = f"silero-vad-{_silero_version()}-16k-sequence" + ("-gemm" if graph == "gemm" else "")

    def speech_probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Float32 speech probability per 512-sample frame, ``ceil(len(audio) / 512)`` values."""
        samples = np.ascontiguousarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"audio must be 1-D mono at {SAMPLE_RATE} Hz, got shape {samples.shape}")
        hidden = np.zeros(STATE_SHAPE, dtype=np.float32)
        cell = np.zeros(STATE_SHAPE, dtype=np.float32)
        parts = []
        for block in frame_blocks(samples, self.max_frames):
            probs, hidden, cell = self.session.run(
                ["speech_probs", "hn", "cn"], {"input": block, "h": hidden, "c": cell})
            parts.append(probs.reshape(-1))
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def speech_probabilities_batch(self, audios: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Probabilities for several sources, in order: one after another (see the module
        docstring), each in blocks of up to ``max_frames`` frames; the LSTM state is reset
        between sources.
        """
        return [self.speech_probabilities(audio) for audio in audios]
