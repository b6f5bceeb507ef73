"""DNSMOS P.835 (SIG / BAK / OVRL, 1..5) with the ONNX model the `speechmos` package ships.

`speechmos` 0.0.1.1 (MIT) bundles Microsoft's ``sig_bak_ovr.onnx``; its own Python wrapper
imports librosa (undeclared) and requests, runs one 9.01 s window at a time with 1 s hops and
needs the P.808 mel model too. Here only the ONNX file is used. Windows hop by ``hop_s`` (default
9.01 s: no overlap, so cost is about one model pass per 9 s of audio instead of one per second) and
run one per ``InferenceSession.run`` call by default: the batch axis is dynamic, but onnxruntime
re-plans for every new input shape, and each part's window count is a new shape (measured on one
thread: 0.19 s per window at a steady batch of 1, 0.33 s with changing batches of 2-6; the outputs
are identical). A clip shorter than a window is tiled to fill it, as in the reference. Raw outputs
are mapped with the reference's (non-personalized) polynomials and averaged over a clip's windows.
Input: 16 kHz mono float32 in [-1, 1].
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
WINDOW_S = 9.01
WINDOW_SAMPLES = int(WINDOW_S * SAMPLE_RATE)
VERSION = "dnsmos-p835-speechmos-0.0.1.1"
# numpy.poly1d coefficients (highest power first) from speechmos/dnsmos.py, non-personalized
_POLY = {"sig": (-0.08397278, 1.22083953, 0.0052439), "bak": (-0.13166888, 1.60915514, -0.39604546),
         "ovrl": (-0.06766283, 1.11546468, 0.04602535)}


class MissingDnsmosModel(RuntimeError):
    """The speechmos package (which holds the ONNX file) is not installed."""


def default_model_path() -> Path:
    """``speechmos/dnsmos_models/sig_bak_ovr.onnx`` inside the installed package (not imported)."""
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDnsmosModel("DNSMOS needs the ONNX model shipped in the `speechmos` package: "
                                 "pip install --no-deps speechmos==0.0.1.1 (or pass model_path)")
    path = Path(spec.submodule_search_locations[0]) / "dnsmos_models" / "sig_bak_ovr.onnx"
    if not path.is_file():
        raise MissingDnsmosModel(f"{path} is missing from the speechmos package")
    return path


@dataclass(frozen=True)
class MosScores:
    """Per clip, 1..5 (NaN for an empty clip)."""

    sig: np.ndarray
    bak: np.ndarray
    ovrl: np.ndarray


def clip_windows(audio: np.ndarray, hop_samples: int) -> np.ndarray:
    """(windows, WINDOW_SAMPLES) float32: the clip tiled up to one window, then hopped."""
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    if audio.size < WINDOW_SAMPLES:
        audio = np.tile(audio, int(np.ceil(WINDOW_SAMPLES / audio.size)))
    starts = list(range(0, audio.size - WINDOW_SAMPLES + 1, hop_samples))
    return np.stack([audio[s:s + WINDOW_SAMPLES] for s in starts])


class Dnsmos:
    """Batched DNSMOS. ``threads``: onnxruntime intra-op threads (1 per Ray worker CPU)."""

    version = VERSION

    def __init__(self, model_path: str | Path | None = None, threads: int = 1, hop_s: float = WINDOW_S,
                 max_batch_windows: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.path = Path(model_path) if model_path else default_model_path()
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.hop_samples = max(1, int(hop_s * SAMPLE_RATE))
        self.max_batch_windows = max_batch_windows

    def score(self, clips: list[np.ndarray]) -> MosScores:
        """SIG/BAK/OVRL per clip; the windows run in chunks of ``max_batch_windows`` (a fixed shape)."""
        windows, owners = [], []
        for i, clip in enumerate(clips):
            if clip.size:
                w = clip_windows(clip, self.hop_samples)
                windows.append(w)
                owners.append(np.full(len(w), i))
        out = {name: np.full(len(clips), np.nan) for name in _POLY}
        if not windows:
            return MosScores(out["sig"], out["bak"], out["ovrl"])
        stacked, owner = np.concatenate(windows), np.concatenate(owners)
        raw = np.concatenate([self.session.run(None, {"input_1": stacked[i:i + self.max_batch_windows]})[0]
                              for i in range(0, len(stacked), self.max_batch_windows)])
        counts = np.bincount(owner, minlength=len(clips))
        for column, name in enumerate(("sig", "bak", "ovrl")):
            mapped = np.polyval(_POLY[name], raw[:, column].astype(np.float64))
            sums = np.bincount(owner, weights=mapped, minlength=len(clips))
            has = counts > 0
            out[name][has] = sums[has] / counts[has]
        return MosScores(out["sig"], out["bak"], out["ovrl"])

    def predict(self, samples: np.ndarray, offsets: np.ndarray, sr: int) -> np.ndarray:
        """OVRL per segment ``samples[offsets[i]:offsets[i+1]]`` (``curation.quality.MosEstimator``)."""
        if sr != SAMPLE_RATE:
            raise ValueError(f"DNSMOS needs {SAMPLE_RATE} Hz audio, got {sr}")
        clips = [samples[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
        return self.score(clips).ovrl
