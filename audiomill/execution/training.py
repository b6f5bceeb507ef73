"""Distributed training through Ray Train: one launcher every training job uses.

A job supplies a ``train_loop(config)`` that runs on each worker (it uses
``ray.train.get_context()`` for its rank and ``ray.train.report`` for metrics and checkpoints);
this module sizes the workers, runs :class:`ray.train.torch.TorchTrainer` inside the process's
Ray session and returns the final metrics and checkpoint directory. CPU workers on the embedded
Ray by default; GPU workers when asked and present.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audiomill.execution.ray_session import RaySettings, ray_session

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainScaling:
    """How many Ray Train workers, and whether each takes a GPU."""

    num_workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: float = 1.0


@dataclass(frozen=True)
class TrainOutcome:
    """What a finished run leaves: the last reported metrics and the checkpoint's local path."""

    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint_dir: str | None = None


class TrainingError(RuntimeError):
    """A training run failed; the message carries the worker's error, first line first."""


def fit_torch(train_loop: Callable[[dict[str, Any]], None], loop_config: dict[str, Any], *,
              name: str, storage_dir: str, scaling: TrainScaling = TrainScaling(),
              ray_settings: RaySettings | None = None) -> TrainOutcome:
    """Run ``train_loop`` on ``scaling.num_workers`` Ray Train workers; return metrics + checkpoint.

    ``storage_dir`` (a local directory) holds Ray Train's run state and checkpoints; ``name``
    names the run inside it.
    """
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    os.makedirs(storage_dir, exist_ok=True)
    with ray_session(ray_settings):
        trainer = TorchTrainer(
            train_loop, train_loop_config=loop_config,
            scaling_config=ScalingConfig(num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
                                         resources_per_worker={"CPU": scaling.cpus_per_worker}),
            run_config=RunConfig(name=name, storage_path=os.path.abspath(storage_dir)))
        try:
            result = trainer.fit()
        except Exception as exc:  # Ray wraps worker errors; surface the cause in one line
            raise TrainingError(f"training run {name!r} failed: {str(exc).splitlines()[0]}") from exc
    checkpoint = result.checkpoint.path if result.checkpoint is not None else None
    logger.info("training %s finished: %s", name, result.metrics)
    return TrainOutcome(metrics=dict(result.metrics or {}), checkpoint_dir=checkpoint)
