"""Fitting and scoring the attribute heads (plain torch; the Ray Train loop calls these).

Full-batch AdamW on standardised features, one cross-entropy per field (unknown answers are
ignored). Deterministic: fixed seed, full batches, no data-order randomness; under DDP each rank
takes rows ``rank::world`` and gradients are averaged by the wrapper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from audiomill.models.understanding.heads import IGNORE, LEARNED_FIELDS, AttributeHeads, HeadsNet


@dataclass(frozen=True)
class FitOptions:
    epochs: int = 300
    hidden: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-3
    seed: int = 0


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = features.mean(axis=0).astype(np.float32)
    std = np.maximum(features.std(axis=0), 1e-3).astype(np.float32)
    return mean, std


def new_net(in_dim: int, options: FitOptions) -> HeadsNet:
    torch.manual_seed(options.seed)
    return HeadsNet(in_dim, options.hidden, LEARNED_FIELDS)


def fit(net: nn.Module, x: np.ndarray, y: np.ndarray, options: FitOptions) -> float:
    """Train ``net`` (a HeadsNet, possibly DDP-wrapped) in place; returns the final loss."""
    inputs = torch.from_numpy(x.astype(np.float32))
    targets = torch.from_numpy(y.astype(np.int64))
    optimiser = torch.optim.AdamW(net.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay)
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE, reduction="sum")
    loss = torch.zeros(())
    net.train()
    for _ in range(options.epochs):
        optimiser.zero_grad()
        outputs = net(inputs)
        known = max(int((targets != IGNORE).sum()), 1)
        loss = sum(loss_fn(out, targets[:, j]) for j, out in enumerate(outputs)) / known
        loss.backward()
        optimiser.step()
    return float(loss.detach())


def accuracy(heads: AttributeHeads, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Per-field accuracy over rows with a known answer (NaN when none), and their mean."""
    probs = heads.predict(x)
    out = {}
    for j, name in enumerate(heads.fields):
        known = y[:, j] != IGNORE
        out[name] = float(np.mean(probs[name][known].argmax(axis=1) == y[known, j])) if known.any() else float("nan")
    values = [v for v in out.values() if np.isfinite(v)]
    out["mean"] = float(np.mean(values)) if values else float("nan")
    return out
