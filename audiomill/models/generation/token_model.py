"""The trainable generation model: text + speaker profile -> 25 Hz semantic tokens.

The text is read as espeak-ng phones (an optional pause after every word); the profile labels
(gender, age, pitch, rate, style) are embedded and added to every phone. A small convolutional
encoder gives each phone a state; a duration head says how many token frames each phone lasts;
a frame decoder predicts the token of every frame of the phones laid out at those durations.
The tokenizer's decoder then speaks the tokens.

Training needs no aligned data: each clip's frames are aligned to its phones by monotonic
alignment search (Glow-TTS) over the model's own per-phone token probabilities, recomputed as
the model learns. A phone may get no frame (fast speech has more phones than 25 Hz frames); a
skipped pause costs nothing, a skipped phone pays ``SKIP_PENALTY``. Saved as ``generator.json`` +
``generator.bin`` (``models.tensor_files``), byte-stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audiomill import schema
from audiomill.annotation import CLASSES
from audiomill.models.tensor_files import load_state, save_state

PROFILE_FIELDS = (schema.ANN_GENDER, schema.ANN_AGE_BAND, schema.ANN_PITCH_BAND, schema.ANN_RATE_BAND,
                  schema.ANN_STYLE)
PAD, UNKNOWN, PAUSE = "<pad>", "<unk>", "_"
SKIP_PENALTY = 4.0  # log-probability a skipped (non-pause) phone costs in the alignment
GENERATOR_JSON, GENERATOR_BIN = "generator.json", "generator.bin"
VERSION = "phone-tokens-v1"


def phone_sequence(words: list[list[str]]) -> list[str]:
    """Phones with a pause before the first word and after every word (pauses may get 0 frames)."""
    out = [PAUSE]
    for word in words:
        out += [*word, PAUSE]
    return out


def profile_ids(labels: dict[str, str | None]) -> list[int]:
    """One id per ``PROFILE_FIELDS`` entry: 0 = unknown, else 1 + the class index."""
    return [CLASSES[f].index(labels[f]) + 1 if labels.get(f) in CLASSES[f] else 0 for f in PROFILE_FIELDS]


@dataclass(frozen=True)
class GeneratorShape:
    phones: tuple[str, ...]  # the vocabulary; index 0 is PAD, 1 UNKNOWN
    codebook_size: int
    hidden: int = 128
    kernel: int = 5
    encoder_layers: int = 3
    decoder_layers: int = 3


class _ConvStack(nn.Module):
    def __init__(self, channels: int, kernel: int, layers: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=kernel // 2) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(layers))
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, C) with a (B, L) validity mask -> (B, L, C)."""
        m = mask[..., None].to(x.dtype)
        for conv, norm in zip(self.convs, self.norms):
            y = conv((x * m).transpose(1, 2)).transpose(1, 2)
            x = norm(x + self.drop(torch.relu(y)))
        return x * m


class TokenGeneratorNet(nn.Module):
    def __init__(self, shape: GeneratorShape) -> None:
        super().__init__()
        self.shape = shape
        d = shape.hidden
        self.phone = nn.Embedding(len(shape.phones), d, padding_idx=0)
        self.profile = nn.ModuleList(nn.Embedding(len(CLASSES[f]) + 1, d) for f in PROFILE_FIELDS)
        self.encoder = _ConvStack(d, shape.kernel, shape.encoder_layers)
        self.align_head = nn.Linear(d, shape.codebook_size)
        self.duration_head = nn.Linear(d, 1)
        self.frame_in = nn.Linear(d + 2, d)
        self.decoder = _ConvStack(d, shape.kernel, shape.decoder_layers)
        self.token_head = nn.Linear(d, shape.codebook_size)

    def encode(self, phones: torch.Tensor, profile: torch.Tensor) -> torch.Tensor:
        """(B, N) phone ids + (B, F) profile ids -> (B, N, d) phone states."""
        x = self.phone(phones) + sum(emb(profile[:, i]) for i, emb in enumerate(self.profile))[:, None, :]
        return self.encoder(x, phones != 0)

    def forward(self, phones: torch.Tensor, profile: torch.Tensor,
                durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(phone states, align logits (B, N, K), log1p-duration predictions (B, N), frame logits
        (B, T, K) with T = the longest total duration)."""
        states = self.encode(phones, profile)
        return states, self.align_head(states), self.duration_head(states)[..., 0], self.frame_logits(states, durations)

    def frame_logits(self, states: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
        """(B, T, K) token logits of the phones laid out at ``durations`` (B, N) frames."""
        frames, position, valid = expand(states, durations)
        return self.token_head(self.decoder(self.frame_in(torch.cat([frames, position], dim=-1)), valid))


def expand(states: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lay phone states out in time: (B, T, d) frames, (B, T, 2) position features (share of the
    phone elapsed, log duration) and the (B, T) validity mask."""
    batch, _, dim = states.shape
    lengths = durations.sum(dim=1)
    total = max(int(lengths.max()), 1)
    frames = states.new_zeros(batch, total, dim)
    position = states.new_zeros(batch, total, 2)
    for b in range(batch):
        d = durations[b]
        index = torch.repeat_interleave(torch.arange(d.numel()), d)
        if index.numel() == 0:
            continue
        starts = torch.cumsum(d, 0) - d
        offset = torch.arange(index.numel()) - starts[index]
        frames[b, : index.numel()] = states[b, index]
        length = d[index].to(states.dtype)
        position[b, : index.numel(), 0] = (offset.to(states.dtype) + 0.5) / length
        position[b, : index.numel(), 1] = torch.log(length)
    valid = torch.arange(total)[None, :] < lengths[:, None]
    return frames, position, valid


def monotonic_align(logp: np.ndarray, skip_cost: np.ndarray) -> np.ndarray:
    """Frames per phone (N,) of the best monotone path through (T, N) log-probabilities.

    Each frame belongs to one phone, phones keep their order, and phone ``j`` may be skipped for
    ``skip_cost[j]`` (so a path exists whenever T >= 1). Viterbi over (frame, phone) states.
    """
    frames, n = logp.shape
    neg = -1e30
    score = np.full(n, neg)
    back = np.zeros((frames, n), np.int8)  # 0 stay, 1 from j-1, 2 from j-2 (j-1 skipped)
    entry = np.concatenate([[0.0], -np.cumsum(skip_cost)[:-1]])  # skip phones 0..j-1 before frame 0
    score[:] = entry + logp[0]
    back[0] = 3  # start
    for t in range(1, frames):
        stay = score
        step = np.concatenate([[neg], score[:-1]])
        jump = np.concatenate([[neg, neg], score[:-2] - skip_cost[1:-1]]) if n > 2 else np.full(n, neg)
        choice = np.argmax(np.stack([stay, step, jump]), axis=0)
        score = np.choose(choice, [stay, step, jump]) + logp[t]
        back[t] = choice
    exit_cost = np.concatenate([-np.cumsum(skip_cost[::-1])[::-1][1:], [0.0]])  # skip phones j+1..N-1 at the end
    j = int(np.argmax(score + exit_cost))
    durations = np.zeros(n, np.int64)
    for t in range(frames - 1, -1, -1):
        durations[j] += 1
        move = back[t, j]
        if t == 0:
            break
        j -= int(move)
    return durations


@dataclass
class TokenGenerator:
    """A trained model: ``generate`` turns phone lists + profiles into token sequences."""

    net: TokenGeneratorNet
    tokenizer: str = ""  # the tokenizer whose tokens it speaks (tokens of another one mean nothing)

    @property
    def shape(self) -> GeneratorShape:
        return self.net.shape

    def phone_ids(self, phones: list[str]) -> list[int]:
        index = {p: i for i, p in enumerate(self.shape.phones)}
        return [index.get(p, 1) for p in phones]

    @torch.no_grad()
    def generate(self, phones: list[list[str]], profiles: list[dict[str, str | None]]) -> list[np.ndarray]:
        """Token ids (int32) for each (phone sequence, profile) pair."""
        self.net.eval()
        ids, prof = batch_inputs([self.phone_ids(p) for p in phones], [profile_ids(p) for p in profiles])
        states = self.net.encode(ids, prof)
        frames = torch.clamp(torch.round(torch.expm1(self.net.duration_head(states)[..., 0])), min=0).long()
        frames = frames * (ids != 0)
        frames[:, 0] = torch.where(frames.sum(dim=1) == 0, 1, frames[:, 0])  # never an empty output
        tokens = self.net.frame_logits(states, frames).argmax(dim=-1).numpy().astype(np.int32)
        return [tokens[b, : int(frames[b].sum())] for b in range(len(phones))]

    def save(self, directory: str | Path) -> None:
        s = self.shape
        meta = {"format": VERSION, "phones": list(s.phones), "codebook_size": s.codebook_size, "hidden": s.hidden,
                "kernel": s.kernel, "encoder_layers": s.encoder_layers, "decoder_layers": s.decoder_layers,
                "profile": {f: list(CLASSES[f]) for f in PROFILE_FIELDS}, "tokenizer": self.tokenizer}
        save_state(directory, GENERATOR_JSON, GENERATOR_BIN, meta, self.net.state_dict())

    @classmethod
    def load(cls, directory: str | Path) -> TokenGenerator:
        meta, state = load_state(directory, GENERATOR_JSON, GENERATOR_BIN,
                                 "run a round with a tokenizer (`audiomill round run --set tokenizer=...`)")
        if meta.get("format") != VERSION or meta["profile"] != {f: list(CLASSES[f]) for f in PROFILE_FIELDS}:
            raise ValueError(f"{directory}: generator format or profile classes differ from this audiomill's")
        shape = GeneratorShape(tuple(meta["phones"]), meta["codebook_size"], meta["hidden"], meta["kernel"],
                               meta["encoder_layers"], meta["decoder_layers"])
        net = TokenGeneratorNet(shape)
        net.load_state_dict(state)
        return cls(net, meta.get("tokenizer", ""))


def batch_inputs(phones: list[list[int]], profiles: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded (B, N) phone ids and (B, F) profile ids."""
    longest = max((len(p) for p in phones), default=1)
    ids = torch.zeros(len(phones), longest, dtype=torch.long)
    for b, p in enumerate(phones):
        ids[b, : len(p)] = torch.as_tensor(p, dtype=torch.long)
    return ids, torch.as_tensor(profiles, dtype=torch.long).reshape(len(phones), len(PROFILE_FIELDS))
