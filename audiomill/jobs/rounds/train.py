"""Training the next attribute heads with Ray Train, and scoring heads on the held-out set.

The training table (features + labels) is written once to the round directory; every Ray Train
worker reads it, takes rows ``rank::world``, and fits under DDP (gradients averaged). Rank 0
saves the heads into the checkpoint Ray Train reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from audiomill import storage
from audiomill.execution.ray_session import RaySettings
from audiomill.execution.training import TrainScaling, fit_torch
from audiomill.models.understanding import training
from audiomill.models.understanding.heads import LEARNED_FIELDS, AttributeHeads, encode_labels
from audiomill.rounds.config import TrainSettings
from audiomill.rounds.store import read_table
from audiomill.rounds.worker import FEATURES


def arrays(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(features, label indices) of a table with ``FEATURES`` and ``ann_*`` label columns."""
    rows = table.select([c for c in table.column_names if c in LEARNED_FIELDS]).to_pylist()
    x = np.asarray(table.column(FEATURES).to_pylist(), dtype=np.float32)
    return x, encode_labels(rows)


def label_digest(table: pa.Table) -> str:
    """sha256 of the training labels (keys + label columns), the label-set id in the registry."""
    columns = ["key"] + [c for c in LEARNED_FIELDS if c in table.column_names]
    text = json.dumps(table.select(columns).sort_by("key").to_pylist(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _options(config: dict[str, Any]) -> training.FitOptions:
    return training.FitOptions(epochs=config["epochs"], hidden=config["hidden"],
                               learning_rate=config["learning_rate"], weight_decay=config["weight_decay"],
                               seed=config["seed"])


def heads_train_loop(config: dict[str, Any]) -> None:
    """Runs on each Ray Train worker."""
    import ray.train
    import torch
    from ray.train.torch import prepare_model

    torch.set_num_threads(1)
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    x, y = arrays(read_table(config["data"]))
    mean, std = training.standardisation(x)
    options = _options(config)
    net = training.new_net(x.shape[1], options)
    wrapped = prepare_model(net, parallel_strategy="ddp" if world > 1 else None)
    loss = training.fit(wrapped, ((x - mean) / std)[rank::world], y[rank::world], options)
    metrics = {"loss": loss, "rows": int(len(x)), "workers": world}
    if rank == 0:
        with tempfile.TemporaryDirectory() as out:
            AttributeHeads(net, mean, std).save(out)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(out))
    else:
        ray.train.report(metrics)


def train_heads(data_uri: str, out_uri: str, settings: TrainSettings, *, name: str, storage_dir: str,
                ray_settings: RaySettings | None) -> dict[str, Any]:
    """Fit heads on ``data_uri`` with Ray Train; the heads' files end up under ``out_uri``."""
    config = {"data": data_uri, "epochs": settings.epochs, "hidden": settings.hidden,
              "learning_rate": settings.learning_rate, "weight_decay": settings.weight_decay, "seed": settings.seed}
    return fit_into(heads_train_loop, config, out_uri, name=name, storage_dir=storage_dir,
                    scaling=TrainScaling(num_workers=settings.num_workers, use_gpu=settings.use_gpu),
                    ray_settings=ray_settings)


def fit_into(loop: Callable[[dict[str, Any]], None], config: dict[str, Any], out_uri: str, *, name: str,
             storage_dir: str, scaling: TrainScaling, ray_settings: RaySettings | None) -> dict[str, Any]:
    """Run ``loop`` on Ray Train workers and store the checkpoint's files under ``out_uri``;
    the numeric metrics of the last report."""
    outcome = fit_torch(loop, config, name=name, storage_dir=storage_dir, scaling=scaling, ray_settings=ray_settings)
    if outcome.checkpoint_dir is None:
        raise RuntimeError(f"training run {name} reported no checkpoint")
    for item in sorted(os.listdir(outcome.checkpoint_dir)):
        if not item.startswith("."):
            storage.write_file(storage.join(out_uri, item), os.path.join(outcome.checkpoint_dir, item))
    return {k: v for k, v in outcome.metrics.items() if isinstance(v, (int, float))}


def evaluate(heads: AttributeHeads | None, table: pa.Table) -> dict[str, float]:
    """Per-field and mean accuracy on the held-out table, overall and on its real clips."""
    if heads is None:
        return {"mean": float("nan"), "real_mean": float("nan")}
    x, y = arrays(table)
    out = training.accuracy(heads, x, y)
    real = np.asarray([o == "real" for o in table.column("origin").to_pylist()])
    if real.any():
        out["real_mean"] = training.accuracy(heads, x[real], y[real])["mean"]
    return out
