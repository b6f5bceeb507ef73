"""Vocoders: log-mel (``mel.MelConfig``) -> 16 kHz audio.

``GriffinLim`` needs no weights (the embedded default): the mel is mapped back to a linear
magnitude with the filterbank's pseudo-inverse and phase is recovered by fast Griffin-Lim
(momentum 0.99). A neural vocoder plugs in as a TorchScript module in a directory (local or a
registry version) holding ``vocoder.json`` (``{"kind": "torchscript", "sample_rate": 16000}``)
and ``vocoder.pt`` that maps a (1, n_mels, frames) log-mel tensor to (1, samples) audio.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from audiomill.config import MODEL_CACHE_DIR
from audiomill.models.tokenizer.mel import MelConfig, mel_filters, torch_threads
from audiomill.schema import SAMPLE_RATE

logger = logging.getLogger(__name__)

GRIFFIN_LIM = "griffin-lim"


class Vocoder(Protocol):
    name: str

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        """(frames, n_mels) log-mel -> float32 16 kHz audio."""


class GriffinLim:
    """Phase reconstruction from a magnitude mel; ``power`` > 1 sharpens harmonics before it."""

    name = GRIFFIN_LIM

    def __init__(self, cfg: MelConfig = MelConfig(), iterations: int = 32, power: float = 1.3,
                 momentum: float = 0.99, seed: int = 0) -> None:
        self.cfg, self.iterations, self.power, self.momentum, self.seed = cfg, iterations, power, momentum, seed
        self._inverse = np.linalg.pinv(mel_filters(cfg.n_fft, cfg.n_mels)).astype(np.float32)

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        with torch_threads():
            return self._reconstruct(log_mel)

    def _reconstruct(self, log_mel: np.ndarray) -> np.ndarray:
        import torch

        if len(log_mel) == 0:
            return np.zeros(0, np.float32)
        magnitude = np.maximum(np.exp(log_mel) @ self._inverse.T, 0.0) ** self.power
        target = torch.from_numpy(np.ascontiguousarray(magnitude.T, np.float32))
        window = torch.hann_window(self.cfg.n_fft)
        length = len(log_mel) * self.cfg.hop
        generator = torch.Generator().manual_seed(self.seed)
        angles = torch.exp(2j * torch.pi * torch.rand(target.shape, generator=generator))
        previous = torch.zeros_like(angles)
        for _ in range(self.iterations):
            audio = torch.istft(target * angles, self.cfg.n_fft, self.cfg.hop, window=window, length=length)
            rebuilt = torch.stft(audio, self.cfg.n_fft, self.cfg.hop, window=window, pad_mode="constant",
                                 return_complex=True)[:, : target.shape[1]]
            accelerated = rebuilt - self.momentum / (1 + self.momentum) * previous
            angles = accelerated / accelerated.abs().clamp_min(1e-8)
            previous = rebuilt
        audio = torch.istft(target * angles, self.cfg.n_fft, self.cfg.hop, window=window, length=length).numpy()
        peak = float(np.abs(audio).max()) or 1.0
        return (audio * min(1.0, 0.9 / peak)).astype(np.float32)


class TorchScriptVocoder:
    """A neural vocoder saved with ``torch.jit.save``: (1, n_mels, frames) log-mel -> (1, samples)."""

    def __init__(self, directory: str, name: str) -> None:
        import torch

        self.name = name
        self._module = torch.jit.load(str(Path(directory) / "vocoder.pt"), map_location="cpu").eval()

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            audio = self._module(torch.from_numpy(np.ascontiguousarray(log_mel.T[None], np.float32)))
        return audio.reshape(-1).numpy().astype(np.float32)


def load_vocoder(spec: str, cfg: MelConfig, registry: str = "") -> Vocoder:
    """``griffin-lim`` (default) or a vocoder directory / registry reference (``name@production``)."""
    if not spec or spec == GRIFFIN_LIM:
        return GriffinLim(cfg)
    from audiomill.models.registry import resolve_model

    resolved = resolve_model(spec, registry)
    directory = resolved.local_dir(MODEL_CACHE_DIR)
    meta_path = Path(directory) / "vocoder.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{spec}: no vocoder.json in {directory} (expected "
                                f'{{"kind": "torchscript", "sample_rate": {SAMPLE_RATE}}} and vocoder.pt)')
    meta = json.loads(meta_path.read_text())
    if meta.get("kind") != "torchscript" or int(meta.get("sample_rate", 0)) != SAMPLE_RATE:
        raise ValueError(f"{spec}: vocoder.json must say kind=torchscript, sample_rate={SAMPLE_RATE}")
    return TorchScriptVocoder(directory, resolved.model_id)
