"""Resemblyzer's pretrained speaker encoder as a pyannote.audio embedding ``Model``.

pyannote's ``SpeakerDiarization`` pipeline embeds each (chunk, local speaker) pair by calling
``model(waveforms, weights=masks)`` on a ``pyannote.audio.Model``; no pretrained pyannote embedding
ships here (they live on the Hugging Face hub), but Resemblyzer's d-vector encoder ships in its
PyPI package. This class wraps that encoder (``models/speaker_encoder.py`` layers and
preprocessing) so the pipeline runs on real pretrained speaker embeddings. Its checkpoint
(``save_checkpoint``) is a normal pyannote checkpoint naming this class, so
``Pipeline.from_pretrained`` loads it like any other embedding model.

Import only where pyannote.audio is installed (``audiomill.models.pyannote_backend``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pyannote.audio import Model
from pyannote.audio.core.task import Problem, Resolution, Specifications

from audiomill.models.speaker_encoder import (EMBEDDING_DIM, PARTIAL_FRAMES, encoder_modules,
                                              load_encoder_weights, normalize_volume, power_mel)

FRAME_S = 0.01  # the encoder's mel hop (10 ms)
PARTIAL_STEP = 77  # frames between 1.6 s partials (Resemblyzer: 1.3 partials per second)
SPEC_DURATION_S = 5.0  # nominal chunk length recorded in the checkpoint (any length works)
MIN_FRAMES = 40  # fewer weighted frames (0.4 s) give a NaN embedding, which pyannote skips


class ResemblyzerEmbedding(Model):
    """(batch, 1, samples) at 16 kHz -> (batch, 256) unit-norm d-vectors.

    ``weights`` (batch, frames), the pipeline's per-speaker activity over the chunk, selects the
    10 ms mel frames where that speaker is active (weight > 0.5) before the encoder runs, so
    each local speaker gets its own embedding.

    ``center`` (a buffer, saved in the checkpoint) is subtracted before the final normalisation.
    Resemblyzer's d-vectors are non-negative (ReLU), so every voice points the same general way;
    removing the mean d-vector of the training speech spread espeak voices apart: whole-turn
    cosine distances went from same-voice <= 0.17 / other-voice >= 0.33 to <= 0.64 / >= 1.21.
    """

    def __init__(self, sample_rate: int = 16000, num_channels: int = 1, task=None) -> None:
        super().__init__(sample_rate=sample_rate, num_channels=num_channels, task=task)
        self.lstm, self.linear = encoder_modules()
        self.register_buffer("center", torch.zeros(EMBEDDING_DIM))

    @classmethod
    def pretrained(cls) -> "ResemblyzerEmbedding":
        """The encoder with the weights shipped in the ``resemblyzer`` package."""
        model = cls()
        load_encoder_weights(model.lstm, model.linear)
        return model.eval()

    @property
    def dimension(self) -> int:
        return EMBEDDING_DIM

    def forward(self, waveforms: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        audio = waveforms[:, 0].detach().cpu().numpy().astype(np.float32)
        masks = None if weights is None else weights.detach().cpu().numpy()
        partials = [self._partials(audio[i], None if masks is None else masks[i]) for i in range(len(audio))]
        out = torch.full((len(audio), EMBEDDING_DIM), float("nan"))
        if any(p is not None for p in partials):
            batch = torch.from_numpy(np.concatenate([p for p in partials if p is not None]))
            _, (hidden, _) = self.lstm(batch.to(self.linear.weight.device))
            raw = torch.relu(self.linear(hidden[-1])).cpu()
            raw = raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-9)
            first = 0
            for i, p in enumerate(partials):
                if p is not None:
                    mean = raw[first:first + len(p)].mean(dim=0)
                    mean = mean / mean.norm().clamp_min(1e-9) - self.center.cpu()
                    out[i] = mean / mean.norm().clamp_min(1e-9)
                    first += len(p)
        return out.to(waveforms.device)

    @staticmethod
    def _partials(wav: np.ndarray, mask: np.ndarray | None) -> np.ndarray | None:
        """(n, 160, 40) mel partials of the frames ``mask`` keeps; None if under MIN_FRAMES."""
        mel = power_mel(normalize_volume(wav))
        if mask is not None and mask.size:
            index = np.minimum((np.arange(len(mel)) * mask.size / max(len(mel), 1)).astype(int),
                               mask.size - 1)
            mel = mel[mask[index] > 0.5]
        if len(mel) < MIN_FRAMES:
            return None
        mel = np.pad(mel, ((0, max(0, PARTIAL_FRAMES - len(mel))), (0, 0)))
        starts = range(0, max(1, len(mel) - PARTIAL_FRAMES + 1), PARTIAL_STEP)
        return np.stack([mel[s:s + PARTIAL_FRAMES] for s in starts])


def set_center(model: ResemblyzerEmbedding, clips: list[np.ndarray]) -> None:
    """Set ``model.center`` to the mean unit d-vector of ``clips`` (16 kHz speech, one voice each)."""
    with torch.inference_mode():
        model.center.zero_()
        vectors = [model(torch.from_numpy(np.ascontiguousarray(c, np.float32))[None, None])[0]
                   for c in clips if c.size >= MIN_FRAMES * 160]
    if not vectors:
        raise ValueError("no clip long enough to estimate the embedding center")
    model.center.copy_(torch.stack(vectors).mean(dim=0))


def save_checkpoint(model: Model, path: Path) -> Path:
    """Write ``model`` as a pyannote checkpoint (``Model.from_pretrained`` reads it back).

    Lightning's own checkpoint layout (state_dict, hyper_parameters) plus pyannote's metadata
    from ``Model.on_save_checkpoint``; used for a model that was not trained by a Trainer.
    """
    import lightning

    if not hasattr(model, "_specifications") and model.task is None:
        model.specifications = Specifications(problem=Problem.REPRESENTATION,
                                              resolution=Resolution.CHUNK, duration=SPEC_DURATION_S)
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "pytorch-lightning_version": lightning.__version__}
    model.on_save_checkpoint(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path
