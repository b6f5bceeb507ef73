"""The tokenizer decoder's Ray Train loop: tokens + speaker embedding -> log-mel, L1 loss (plus an
L1 loss on frame-to-frame differences, ``delta_weight``: the plain L1 optimum over a 40 ms unit is a
smeared average, and the transitions between units are what a listener reads).

Training data is one ``.npz`` (written by ``jobs/tokenizer.py``): every training utterance's
tokens and log-mel concatenated into one stream, utterance offsets and speaker embeddings.
Each worker draws random fixed-length crops from the stream (its own seed per rank), DDP averages
gradients, rank 0 reports the held-out L1 and the final weights as the checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from audiomill.models.tokenizer.semantic import MEL_PER_FRAME

CHECKPOINT_FILE = "decoder.pt"


@dataclass(frozen=True)
class DecoderTraining:
    """Optimisation settings; ``crop_tokens`` x 40 ms is the length of one training example."""

    epochs: int = 20
    steps_per_epoch: int = 50
    batch_size: int = 16
    crop_tokens: int = 48
    learning_rate: float = 2e-3
    seed: int = 0
    delta_weight: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def save_training_data(path: str, utterances: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """``utterances``: (tokens (T,), log-mel (4T, n_mels), speaker (256,)) each, in a fixed order."""
    tokens = np.concatenate([u[0] for u in utterances]).astype(np.int64)
    mel = np.concatenate([u[1] for u in utterances]).astype(np.float32)
    offsets = np.cumsum([0] + [len(u[0]) for u in utterances]).astype(np.int64)
    np.savez(path, tokens=tokens, mel=mel, offsets=offsets, speakers=np.stack([u[2] for u in utterances]))


def _crops(data: dict[str, np.ndarray], train_ids: np.ndarray, cfg: DecoderTraining,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch of (tokens, speaker, mel) crops; a crop never crosses an utterance boundary."""
    offsets = data["offsets"]
    lengths = offsets[train_ids + 1] - offsets[train_ids]
    chosen = rng.choice(train_ids, size=cfg.batch_size, p=lengths / lengths.sum())
    crop = int(min(cfg.crop_tokens, lengths.min()))
    tokens, mels = [], []
    for utterance in chosen:
        start = offsets[utterance] + rng.integers(0, offsets[utterance + 1] - offsets[utterance] - crop + 1)
        tokens.append(data["tokens"][start:start + crop])
        mels.append(data["mel"][start * MEL_PER_FRAME:(start + crop) * MEL_PER_FRAME])
    return np.stack(tokens), data["speakers"][chosen], np.stack(mels)


def split_ids(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) utterance ids: every 10th utterance is held out (none if fewer than 10)."""
    ids = np.arange(count)
    held = ids[9::10]
    return np.setdiff1d(ids, held), held


def held_out_l1(model, data: dict[str, np.ndarray], ids: np.ndarray) -> float:  # noqa: ANN001
    """Mean absolute log-mel error over whole held-out utterances."""
    import torch

    errors, frames = 0.0, 0
    with torch.no_grad():
        for utterance in ids:
            a, b = data["offsets"][utterance], data["offsets"][utterance + 1]
            tokens = torch.from_numpy(data["tokens"][a:b])[None]
            speaker = torch.from_numpy(data["speakers"][utterance])[None]
            predicted = model(tokens, speaker)[0].numpy()
            errors += float(np.abs(predicted - data["mel"][a * MEL_PER_FRAME:b * MEL_PER_FRAME]).sum())
            frames += predicted.size
    return errors / max(frames, 1)


def mel_loss(predicted, target, delta_weight: float = 0.0):  # noqa: ANN001, ANN201 - torch tensors
    """L1 on log-mel frames, plus ``delta_weight`` x L1 on their differences along time."""
    import torch

    loss = torch.nn.functional.l1_loss(predicted, target)
    if delta_weight:
        loss = loss + delta_weight * torch.nn.functional.l1_loss(predicted[:, 1:] - predicted[:, :-1],
                                                                 target[:, 1:] - target[:, :-1])
    return loss


def train_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker (``fit_torch``)."""
    import ray.train
    import torch
    from ray.train.torch import prepare_model

    from audiomill.models.tokenizer.decoder import DecoderConfig, TokenDecoder

    cfg = DecoderTraining(**config["training"])
    rank = ray.train.get_context().get_world_rank()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)
    with np.load(config["data"]) as archive:
        data = {name: archive[name] for name in archive.files}
    train_ids, held_ids = split_ids(len(data["speakers"]))
    model = prepare_model(TokenDecoder(DecoderConfig(**config["decoder"])))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.learning_rate, total_steps=total_steps)
    rng = np.random.default_rng([cfg.seed, rank])
    for epoch in range(cfg.epochs):
        losses = []
        for _ in range(cfg.steps_per_epoch):
            tokens, speaker, mel = (torch.from_numpy(a) for a in _crops(data, train_ids, cfg, rng))
            loss = mel_loss(model(tokens, speaker), mel, cfg.delta_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss))
        metrics = {"epoch": epoch, "train_l1": float(np.mean(losses))}
        if epoch < cfg.epochs - 1:
            ray.train.report(metrics)
            continue
        _report_final(model, data, held_ids, metrics, rank)


def _report_final(model, data, held_ids, metrics, rank) -> None:  # noqa: ANN001
    import ray.train
    import torch

    inner = model.module if hasattr(model, "module") else model
    inner.eval()
    if rank != 0:
        ray.train.report(metrics)
        return
    metrics["held_out_l1"] = held_out_l1(inner, data, held_ids) if len(held_ids) else float("nan")
    with tempfile.TemporaryDirectory() as directory:
        torch.save(inner.state_dict(), os.path.join(directory, CHECKPOINT_FILE))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))
