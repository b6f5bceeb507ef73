"""Runners map the same stages onto Ray Data or run them in this process.

Both take part descriptors (one row per part: ``part_uri``) and yield the writer's stats rows as
parts finish. Nothing but those small stats rows ever reaches the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import pyarrow as pa

from audiomill.config import RunnerConfig
from audiomill.pipelines.base import Stage
from audiomill.pipelines.clean import PART_URI, LoadPartStage

logger = logging.getLogger(__name__)


def _descriptor(uri: str) -> pa.Table:
    return pa.table({PART_URI: pa.array([uri], pa.string())})


class StageChain:
    """Several stages applied in order to one batch; one instance per Ray actor or process."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def __call__(self, table: pa.Table) -> pa.Table:
        for stage in self.stages:
            table = stage(table)
        return table


class LocalRunner:
    """In-process, one part at a time: for unit tests and ``--runner local`` debugging."""

    def run(self, part_uris: Sequence[str], stages: Sequence[Stage]) -> Iterator[pa.Table]:
        chain = StageChain([LoadPartStage(), *stages])
        for uri in part_uris:
            yield chain(_descriptor(uri))


class RayRunner:
    """Ray Data: streaming ``map_batches``, one block per part, actor pools for stateful stages.

    Consecutive CPU-only stages are fused into one actor pool (one actor per CPU, each running a
    whole part through them), which keeps every core busy on small machines; stages that need GPUs
    get their own actor pool with fractional GPUs as declared.
    """

    def __init__(self, cfg: RunnerConfig) -> None:
        self.cfg = cfg

    def run(self, part_uris: Sequence[str], stages: Sequence[Stage]) -> Iterator[pa.Table]:
        import ray
        from ray.data import DataContext

        if not part_uris:
            return
        self._init_ray(ray)
        for name in ("ray.data", "ray"):  # Ray Data installs its own INFO handlers on import
            logging.getLogger(name).setLevel(logging.ERROR)
        context = DataContext.get_current()
        context.target_max_block_size = None  # a block is a part: never split it
        context.enable_progress_bars = False  # the CLI draws its own progress
        context.execution_options.preserve_order = False
        dataset = ray.data.from_items([{PART_URI: uri} for uri in part_uris],
                                      override_num_blocks=len(part_uris))
        cpus = max(1, int(ray.available_resources().get("CPU", 1)))
        pool = self.cfg.actors or max(1, int(cpus / self.cfg.actor_cpus))
        memory = {"memory": self.cfg.actor_memory_bytes} if self.cfg.actor_memory_bytes else {}
        for group in _group_by_device([LoadPartStage(), *stages]):
            gpus = max(s.resources.num_gpus for s in group)
            cpu = self.cfg.actor_cpus if not gpus else max(s.resources.num_cpus for s in group)
            size = (_gpu_pool_size(ray.cluster_resources(), gpus, len(part_uris)) if gpus
                    else min(pool, len(part_uris)))
            dataset = dataset.map_batches(
                _bound_chain(group), batch_size=None, batch_format="pyarrow",
                zero_copy_batch=True, num_cpus=cpu, num_gpus=gpus or None, **memory,
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=size))
        yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0)

    def _init_ray(self, ray) -> None:  # noqa: ANN001 - the ray module
        from audiomill.execution.ray_session import RaySettings, start_or_join

        start_or_join(ray, RaySettings(address=self.cfg.address, num_cpus=self.cfg.num_cpus))


def _bound_chain(stages: Sequence[Stage]) -> type[StageChain]:
    """A StageChain class with the stages built in (shipped with the class, not as actor args)."""
    bound = list(stages)

    class BoundChain(StageChain):
        def __init__(self) -> None:
            super().__init__(bound)

    BoundChain.__name__ = BoundChain.__qualname__ = "Stages[" + ",".join(s.name for s in bound) + "]"
    return BoundChain


def _group_by_device(stages: Sequence[Stage]) -> list[list[Stage]]:
    """Split the stage list where the GPU need changes."""
    groups: list[list[Stage]] = []
    for stage in stages:
        if groups and groups[-1][-1].resources.num_gpus == stage.resources.num_gpus:
            groups[-1].append(stage)
        else:
            groups.append([stage])
    return groups


def _gpu_pool_size(cluster: dict[str, float], gpus_per_actor: float, parts: int) -> int:
    """Actors of a GPU group that fit the cluster's GPUs at once (0.25 GPU each: 4 per card)."""
    available = cluster.get("GPU", 0.0)
    if available < gpus_per_actor:
        raise RuntimeError(f"a stage needs {gpus_per_actor} GPU per actor but the Ray cluster has "
                           f"{available:g} GPUs; use a GPU cluster or run ASR on CPU (asr.device=cpu)")
    return max(1, min(parts, int(available / gpus_per_actor + 1e-9)))


def make_runner(cfg: RunnerConfig) -> LocalRunner | RayRunner:
    return RayRunner(cfg) if cfg.kind == "ray" else LocalRunner()
