"""Tokens (+ a speaker embedding) -> log-mel: the small convolutional decoder the project trains.

25 Hz token embeddings plus a projected speaker d-vector go through residual 1-D conv blocks,
a 4x transposed-conv upsampling to the 100 Hz mel rate, more conv blocks and a linear head to
``n_mels`` log-mel bins. Non-causal, fully convolutional: any length decodes in one pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from audiomill.models.tokenizer.semantic import MEL_PER_FRAME


@dataclass(frozen=True)
class DecoderConfig:
    codebook_size: int
    n_mels: int = 80
    speaker_dim: int = 256
    hidden: int = 192
    blocks_low: int = 3  # residual blocks at 25 Hz
    blocks_high: int = 2  # residual blocks at 100 Hz
    kernel: int = 5

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class _Block(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(torch.nn.functional.gelu(self.conv(self.norm(x))))


class TokenDecoder(nn.Module):
    """``forward(tokens (B, T) long, speaker (B, speaker_dim))`` -> (B, 4T, n_mels) log-mel."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.codebook_size, cfg.hidden)
        self.speaker = nn.Linear(cfg.speaker_dim, cfg.hidden)
        self.low = nn.Sequential(*[_Block(cfg.hidden, cfg.kernel, 2 ** i) for i in range(cfg.blocks_low)])
        self.up = nn.ConvTranspose1d(cfg.hidden, cfg.hidden, 2 * MEL_PER_FRAME, stride=MEL_PER_FRAME,
                                     padding=MEL_PER_FRAME // 2)
        self.high = nn.Sequential(*[_Block(cfg.hidden, cfg.kernel, 2 ** i) for i in range(cfg.blocks_high)])
        self.head = nn.Conv1d(cfg.hidden, cfg.n_mels, 1)

    def forward(self, tokens: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.speaker(speaker)[:, None, :]
        x = self.low(x.transpose(1, 2))
        x = self.high(self.up(x))
        return self.head(x).transpose(1, 2)

    @torch.no_grad()
    def decode(self, tokens: np.ndarray, speaker: np.ndarray) -> np.ndarray:
        """(T,) ids + (speaker_dim,) embedding -> (4T, n_mels) float32 log-mel."""
        self.eval()
        from audiomill.models.tokenizer.mel import torch_threads

        ids = torch.from_numpy(np.asarray(tokens, np.int64))[None]
        spk = torch.from_numpy(np.array(speaker, np.float32))[None]
        with torch_threads():
            return self(ids, spk)[0].numpy()
