"""Training the next attribute heads with Ray Train, and scoring heads on the held-out set.

The training table (features + labels) is written once to the round directory; every Ray Train
worker reads it, takes rows ``rank::world``, and fits under DDP (gradients averaged). Rank 0
saves the heads into the checkpoint Ray Train reports. The round's models (heads, generator)
train in one Ray Train run when their worker shapes match (:func:`fit_jobs`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class TrainJob:
    """One model the train phase fits on Ray Train.

    ``fitter(config, rank, world)`` runs on every worker and returns (metrics, save): ``save(dir)``
    writes the model's files, and rank 0 calls it. A module-level function, so workers import it.
    """

    name: str
    fitter: Callable[[dict[str, Any], int, int], tuple[dict[str, Any], Callable[[str], None]]]
    config: dict[str, Any]
    out_uri: str
    scaling: TrainScaling


def fit_heads(config: dict[str, Any], rank: int, world: int) -> tuple[dict[str, Any], Callable[[str], None]]:
    """The attribute heads on rows ``rank::world`` (gradients averaged under DDP)."""
    import torch
    from ray.train.torch import prepare_model

    torch.set_num_threads(1)
    x, y = arrays(read_table(config["data"]))
    mean, std = training.standardisation(x)
    options = _options(config)
    net = training.new_net(x.shape[1], options)
    wrapped = prepare_model(net, parallel_strategy="ddp" if world > 1 else None)
    loss = training.fit(wrapped, ((x - mean) / std)[rank::world], y[rank::world], options)
    return {"loss": loss, "rows": int(len(x)), "workers": world}, AttributeHeads(net, mean, std).save


def heads_job(data_uri: str, out_uri: str, settings: TrainSettings) -> TrainJob:
    """Fit heads on ``data_uri``; their files end up under ``out_uri``."""
    config = {"data": data_uri, "epochs": settings.epochs, "hidden": settings.hidden,
              "learning_rate": settings.learning_rate, "weight_decay": settings.weight_decay, "seed": settings.seed}
    return TrainJob("heads", fit_heads, config, out_uri,
                    TrainScaling(num_workers=settings.num_workers, use_gpu=settings.use_gpu))


def jobs_train_loop(config: dict[str, Any]) -> None:
    """Runs on each Ray Train worker: every job in turn, one checkpoint with a folder per job."""
    import ray.train

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    metrics: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as out:
        for name, fitter, job_config in config["jobs"]:
            job_metrics, save = fitter(job_config, rank, world)
            metrics |= {f"{name}/{k}": v for k, v in job_metrics.items()}
            if rank == 0:
                os.makedirs(folder := os.path.join(out, name))
                save(folder)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(out) if rank == 0 else None)


def fit_jobs(jobs: list[TrainJob], *, name: str, storage_dir: str,
             ray_settings: RaySettings | None) -> dict[str, dict[str, Any]]:
    """Fit ``jobs`` on Ray Train, one run per worker shape (jobs of the same scaling share one worker
    group: starting one costs ~15-20 s on a 2-core box, more than a tiny round's training); each
    job's files go to its ``out_uri``. The numeric metrics per job name."""
    groups: dict[TrainScaling, list[TrainJob]] = {}
    for job in jobs:
        groups.setdefault(job.scaling, []).append(job)
    out: dict[str, dict[str, Any]] = {}
    for i, (scaling, members) in enumerate(groups.items()):
        run = name if len(groups) == 1 else f"{name}-{i}"
        config = {"jobs": [(job.name, job.fitter, job.config) for job in members]}
        outcome = fit_torch(jobs_train_loop, config, name=run, storage_dir=storage_dir,
                            scaling=scaling, ray_settings=ray_settings)
        if outcome.checkpoint_dir is None:
            raise RuntimeError(f"training run {run} reported no checkpoint")
        for job in members:
            files = os.path.join(outcome.checkpoint_dir, job.name)
            for item in sorted(os.listdir(files)):
                if not item.startswith("."):
                    storage.write_file(storage.join(job.out_uri, item), os.path.join(files, item))
            prefix = f"{job.name}/"
            out[job.name] = {k[len(prefix):]: v for k, v in outcome.metrics.items()
                             if k.startswith(prefix) and isinstance(v, (int, float))}
    return out


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
