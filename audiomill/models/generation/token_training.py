"""Fitting the token generator (``token_model``) and scoring it: no Ray here.

Examples are (phones, profile, tokens of the original audio). Each step aligns the batch's frames
to its phones with the current model (``monotonic_align``; the first ``warmup_steps`` spread each
clip's frames evenly over its phones instead, so the first alignments are not arbitrary), then
minimises three losses: the aligned phones' token log-likelihood (what the alignment reads), the
log-duration error, and the frame decoder's cross-entropy. Agreement of a generated sequence
with the original's tokens is ``1 - token_edit_distance`` (repeats collapsed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from audiomill.models.generation import token_model as tm
from audiomill.models.tokenizer.compare import token_edit_distance


@dataclass(frozen=True)
class Example:
    phones: list[int]  # ids in the generator's phone vocabulary
    profile: list[int]  # token_model.profile_ids
    tokens: np.ndarray  # the original's token ids at 25 Hz
    pauses: np.ndarray  # bool per phone: a pause (skipping it in the alignment is free)


@dataclass(frozen=True)
class FitOptions:
    steps: int = 400
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_steps: int = 40
    seed: int = 0


def vocabulary(phone_lists: list[list[str]]) -> tuple[str, ...]:
    """PAD, UNKNOWN, then every phone seen, sorted (the same data gives the same ids)."""
    return (tm.PAD, tm.UNKNOWN, *sorted({p for phones in phone_lists for p in phones} - {tm.PAD, tm.UNKNOWN}))


def examples(generator: tm.TokenGenerator, phones: list[list[str]], profiles: list[dict[str, str | None]],
             tokens: list[np.ndarray]) -> list[Example]:
    return [Example(generator.phone_ids(p), tm.profile_ids(prof), np.asarray(t, np.int64),
                    np.asarray([x == tm.PAUSE for x in p]))
            for p, prof, t in zip(phones, profiles, tokens) if len(t) > 0 and p]


def _uniform(n: int, frames: int, pauses: np.ndarray) -> np.ndarray:
    """``frames`` spread evenly over the non-pause phones (all phones when there are none)."""
    speak = np.flatnonzero(~pauses) if (~pauses).any() else np.arange(n)
    out = np.zeros(n, np.int64)
    edges = np.linspace(0, frames, speak.size + 1).round().astype(int)
    out[speak] = np.diff(edges)
    if out.sum() != frames:  # more phones than frames: the rounding above already sums right
        out[speak[-1]] += frames - out.sum()
    return out


def _align(net: tm.TokenGeneratorNet, batch: list[Example], phones: torch.Tensor, profile: torch.Tensor,
           uniform: bool) -> torch.Tensor:
    durations = torch.zeros(phones.shape, dtype=torch.long)
    if uniform:
        for b, ex in enumerate(batch):
            durations[b, : len(ex.phones)] = torch.from_numpy(_uniform(len(ex.phones), len(ex.tokens), ex.pauses))
        return durations
    was_training = net.training
    net.eval()
    with torch.no_grad():
        logp = torch.log_softmax(net.align_head(net.encode(phones, profile)), dim=-1).numpy()
    net.train(was_training)
    for b, ex in enumerate(batch):
        lp = logp[b, : len(ex.phones)][:, ex.tokens].T.astype(np.float64)  # (frames, phones)
        skip = np.where(ex.pauses, 0.0, tm.SKIP_PENALTY)
        durations[b, : len(ex.phones)] = torch.from_numpy(tm.monotonic_align(lp, skip))
    return durations


def _step_loss(model: nn.Module, net: tm.TokenGeneratorNet, batch: list[Example],
               uniform: bool) -> tuple[torch.Tensor, dict[str, float]]:
    phones, profile = tm.batch_inputs([ex.phones for ex in batch], [ex.profile for ex in batch])
    durations = _align(net, batch, phones, profile, uniform)
    _, align_logits, log_durations, frame_logits = model(phones, profile, durations)
    frames = frame_logits.shape[1]
    targets = torch.full((len(batch), frames), -100, dtype=torch.long)
    owner = torch.zeros((len(batch), frames), dtype=torch.long)
    for b, ex in enumerate(batch):
        targets[b, : len(ex.tokens)] = torch.from_numpy(ex.tokens)
        owner[b, : len(ex.tokens)] = torch.repeat_interleave(torch.arange(durations.shape[1]), durations[b])
    valid = targets >= 0
    align_logp = torch.log_softmax(align_logits, dim=-1)
    picked = align_logp[torch.arange(len(batch))[:, None], owner, targets.clamp(min=0)]
    align_loss = -(picked * valid).sum() / valid.sum()
    phone_mask = phones != 0
    duration_loss = ((log_durations - torch.log1p(durations.float())) ** 2 * phone_mask).sum() / phone_mask.sum()
    token_loss = nn.functional.cross_entropy(frame_logits.reshape(-1, frame_logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=-100)
    loss = align_loss + duration_loss + token_loss
    return loss, {"align": float(align_loss.detach()), "duration": float(duration_loss.detach()),
                  "token": float(token_loss.detach())}


def fit(model: nn.Module, net: tm.TokenGeneratorNet, data: list[Example], options: FitOptions) -> dict[str, float]:
    """Train ``model`` (``net`` itself, or ``net`` wrapped for DDP) for ``options.steps`` steps;
    the last step's losses. Every worker runs the same number of steps, whatever its share."""
    if not data:
        raise ValueError("no training examples (clips with a transcript, phones and tokens)")
    rng = np.random.default_rng(options.seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=options.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, options.learning_rate, total_steps=options.steps,
                                                   pct_start=0.1)
    order: list[int] = []
    losses: dict[str, float] = {}
    model.train()
    for step in range(options.steps):
        if len(order) < options.batch_size:
            order += rng.permutation(len(data)).tolist()
        batch = [data[i] for i in order[: options.batch_size]]
        del order[: options.batch_size]
        loss, losses = _step_loss(model, net, batch, uniform=step < options.warmup_steps)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
    return losses


def agreement(generated: np.ndarray, original: np.ndarray) -> float:
    """1 - normalised edit distance of the repeat-collapsed token sequences (1 = the same units)."""
    return 1.0 - token_edit_distance(np.asarray(generated), np.asarray(original))
