"""Runners map the same stages and global steps onto Ray Data, or run them in this process.

A runner is a context manager: the Ray runner enters the process's Ray session
(``execution.ray_session``) when first needed and leaves it on exit, so a job's part stages and
its global dedup step run on the same Ray instance with the job's ``runner`` settings. Both take
part descriptors (one row per part: ``part_uri``) and yield the writer's stats rows as parts
finish; nothing but those small rows and verified dedup edges reaches the driver.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

import pyarrow as pa

from audiomill.config import RunnerConfig
from audiomill.curation.dedup.edges import local_edges
from audiomill.curation.dedup.search import EdgeSearch
from audiomill.execution.ray_session import RaySettings, ray_session
from audiomill.formats.tables import read_num_rows
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


class LocalRunner(contextlib.AbstractContextManager):
    """In-process, one part at a time: for unit tests and ``--runner local`` debugging."""

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, part_uris: Sequence[str], stages: Sequence[Stage]) -> Iterator[pa.Table]:
        chain = StageChain([LoadPartStage(), *stages])
        for uri in part_uris:
            yield chain(_descriptor(uri))

    def find_dedup_edges(self, search: EdgeSearch) -> pa.Table:
        return local_edges(search.all_features(), search.opts)


class RayRunner(contextlib.AbstractContextManager):
    """Ray Data: streaming ``map_batches``, one block per part, actor pools for stages.

    Consecutive CPU-only stages are fused into one actor pool (one actor per CPU, each running a
    whole part through them), which keeps every core busy on small machines; stages that need GPUs
    get their own actor pool with fractional GPUs as declared. The dedup edge search runs on Ray
    Data from ``dedup_min_rows`` feature rows up (below, Ray Data's start-up outweighs the work).
    """

    def __init__(self, cfg: RunnerConfig, dedup_min_rows: int = 0) -> None:
        self.cfg = cfg
        self.dedup_min_rows = dedup_min_rows
        self._stack = contextlib.ExitStack()
        self._ray = None

    def _session(self):  # noqa: ANN202 - the ray module
        if self._ray is None:
            self._ray = self._stack.enter_context(
                ray_session(RaySettings(address=self.cfg.address, num_cpus=self.cfg.num_cpus)))
        return self._ray

    def __exit__(self, *exc: object) -> None:
        self._ray = None
        self._stack.close()

    def run(self, part_uris: Sequence[str], stages: Sequence[Stage]) -> Iterator[pa.Table]:
        if not part_uris:
            return
        ray = self._session()
        from ray.data import DataContext

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

    def find_dedup_edges(self, search: EdgeSearch) -> pa.Table:
        rows = search.features.num_rows + sum(read_num_rows(u) for u in search.index_uris)
        if rows < self.dedup_min_rows:
            return local_edges(search.all_features(), search.opts)
        from audiomill.execution.ray_dedup import ray_edges

        return ray_edges(self._session(), search)


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


def effective_kind(cfg: RunnerConfig, parts: int) -> str:
    """``cfg.kind`` with ``auto`` decided: local for a job of at most one part and no Ray address.
    (All parts, not only those left to run: a resumed big job still dedups on Ray Data.)"""
    if cfg.kind != "auto":
        return cfg.kind
    return "local" if cfg.address is None and parts <= 1 else "ray"


def make_runner(cfg: RunnerConfig, dedup_min_rows: int = 0, parts: int = 2) -> LocalRunner | RayRunner:
    if effective_kind(cfg, parts) == "ray":
        return RayRunner(cfg, dedup_min_rows)
    return LocalRunner()
