"""Runners map the same stages and global steps onto Ray Data, a local process pool, or this process.

A runner is a context manager: the Ray runner enters the process's Ray session
(``execution.ray_session``) when first needed and leaves it on exit, so a job's part stages and
its global dedup step run on the same Ray instance with the job's ``runner`` settings. All take
part descriptors (one row per part: ``part_uri``) and yield the writer's stats rows as parts
finish; nothing but those small rows and verified dedup edges reaches the driver.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import pyarrow as pa

from audiomill.config import RunnerConfig
from audiomill.curation.dedup.edges import local_edges
from audiomill.curation.dedup.search import EdgeSearch
from audiomill.execution.memory import release_free_memory, use_returning_allocator
from audiomill.execution.ray_session import RaySettings, ray_session
from audiomill.pipelines.base import Stage
from audiomill.pipelines.clean import PART_URI, LoadPartStage

logger = logging.getLogger(__name__)


def _descriptor(uri: str) -> pa.Table:
    return pa.table({PART_URI: pa.array([uri], pa.string())})


class StageChain:
    """Several stages applied in order to one batch; one instance per Ray actor or process.

    A part's memory goes back to the OS when the part is done (``execution/memory.py``), so a
    worker waiting for its next part does not hold the last one's peak."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)
        use_returning_allocator()

    def __call__(self, table: pa.Table) -> pa.Table:
        for stage in self.stages:
            table = stage(table)
        release_free_memory()
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


class WorkerLostError(RuntimeError):
    """A part kept killing the process that ran it (out of memory, a crash in native code)."""


class ProcessRunner(contextlib.AbstractContextManager):
    """A pool of worker processes on this machine, one part per task: the fast path for jobs
    that fit one machine (``runner.kind=processes``).

    It runs the same stage chain as a Ray actor, with the same one-thread BLAS, so the outputs are
    the same bytes (``test_process_runner``). What it saves is Ray itself: on a 2-core box Ray's
    start, its system actors and shutdown cost about 12 s of wall time and 8 CPU-seconds, which a
    job of an hour of audio does not amortize. What it lacks: other nodes, GPU actor pools (a GPU
    stage loads its model in every worker) and Ray Data's streaming between stage groups. A worker
    that dies takes only its part's attempt with it: the pool is rebuilt and the parts not yet
    done run again (parts are idempotent), up to ``max_restarts`` times. The global dedup step of
    a big job (``dedup_min_rows`` segments or more) starts a local Ray for its Ray Data edge search.
    """

    max_restarts = 3

    def __init__(self, cfg: RunnerConfig, dedup_min_rows: int | None = None) -> None:
        cpus = cfg.num_cpus or len(os.sched_getaffinity(0))
        self.cfg = cfg
        self.workers = cfg.actors or max(1, int(cpus / cfg.actor_cpus))
        self.dedup_min_rows = dedup_min_rows
        self._stack = contextlib.ExitStack()

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run(self, part_uris: Sequence[str], stages: Sequence[Stage]) -> Iterator[pa.Table]:
        todo = list(part_uris)
        payload = pickle.dumps([LoadPartStage(), *stages])
        for attempt in range(self.max_restarts + 1):
            if not todo:
                return
            try:
                yield from self._pool_run(todo, payload)
                return
            except BrokenProcessPool as exc:
                if attempt == self.max_restarts:
                    raise WorkerLostError(f"a worker process died {attempt + 1} times; parts not done: "
                                          f"{todo[:5]}") from exc
                logger.warning("a worker process died; rerunning %d parts on a new pool", len(todo))

    def _pool_run(self, todo: list[str], payload: bytes) -> Iterator[pa.Table]:
        """Run ``todo`` on one pool, removing each part from it as its stats row arrives."""
        context = multiprocessing.get_context("spawn")  # no forked copies of the driver's threads
        pool = ProcessPoolExecutor(min(self.workers, len(todo)), mp_context=context,
                                   initializer=_process_worker_init, initargs=(payload,))
        finished = False
        try:
            pending = {pool.submit(_process_worker_run, uri): uri for uri in todo}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: pending[f]):
                    uri = pending.pop(future)
                    batch = future.result()
                    todo.remove(uri)
                    yield batch
            finished = True
        finally:
            if not finished:  # an error or an interrupt: running parts are killed, not waited for
                _terminate_workers(pool)  # (a part may take minutes; resume reruns it anyway)
            # all done: the workers exit while the driver finalizes (their teardown took ~0.5 s)
            pool.shutdown(wait=not finished, cancel_futures=True)

    def find_dedup_edges(self, search: EdgeSearch) -> pa.Table:
        """In the driver below ``dedup_min_rows`` segments (None: always); from there, on a local
        Ray started for this step only, so the driver's memory stays bounded at any scale, as with
        the Ray runner."""
        if self.dedup_min_rows is None or search.rows() < self.dedup_min_rows:
            return local_edges(search.all_features(), search.opts)
        from audiomill.execution.ray_dedup import ray_edges

        ray = self._stack.enter_context(ray_session(RaySettings(num_cpus=self.cfg.num_cpus)))
        return ray_edges(ray, search)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """SIGTERM the pool's worker processes (``ProcessPoolExecutor`` has no public way before 3.14)."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        if process.is_alive():
            process.terminate()


_WORKER_CHAIN: StageChain | None = None


def _process_worker_init(payload: bytes) -> None:
    """Pin BLAS/OpenMP to one thread before numpy loads (as Ray does for a 1-CPU actor), then
    build the chain; models load on the first part, as in an actor."""
    global _WORKER_CHAIN
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    _WORKER_CHAIN = StageChain(pickle.loads(payload))


def _process_worker_run(uri: str) -> pa.Table:
    assert _WORKER_CHAIN is not None, "worker not initialised"
    return _WORKER_CHAIN(_descriptor(uri))


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
        if search.rows() < self.dedup_min_rows:
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


def effective_kind(cfg: RunnerConfig, parts: int, gpus: bool = False) -> str:
    """``cfg.kind`` with ``auto`` decided (see ``RunnerConfig``): Ray for an ``address``; local
    for at most one part; Ray for more when a stage needs GPUs (its own actor pool); else
    processes. All parts count, not only those left to run, so a resumed job runs where it started."""
    if cfg.kind != "auto":
        return cfg.kind
    if cfg.address is not None:
        return "ray"
    if parts <= 1:
        return "local"
    return "ray" if gpus else "processes"


Runner = LocalRunner | ProcessRunner | RayRunner


def make_runner(cfg: RunnerConfig, dedup_min_rows: int = 0, parts: int = 2, gpus: bool = False) -> Runner:
    kind = effective_kind(cfg, parts, gpus)
    if kind == "ray":
        return RayRunner(cfg, dedup_min_rows)
    if kind == "processes":
        return ProcessRunner(cfg, dedup_min_rows)
    return LocalRunner()
