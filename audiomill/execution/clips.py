"""Map a round's per-clip work over rows: Ray Data actors (models load once per actor) or in-process.

A *task* is a small picklable object with ``__call__(worker, rows) -> rows``; the worker is built
from a picklable spec by ``make_worker(spec)`` once per actor. Input rows are plain dicts (keys,
shard byte ranges, labels); audio is read inside the task, so it never passes through the driver.
Rows are grouped into batches by the driver, in order, so a rerun sees the same batches.
Output rows come back sorted by ``sort_key`` (Ray Data does not keep order).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from audiomill.execution.ray_session import RaySettings, ray_session

logger = logging.getLogger(__name__)
Rows = list[dict[str, Any]]


PAYLOAD = "payload"


class _Actor:
    """Runs ``task`` on whole groups: a group is one batch fixed by the driver (pickled rows), so
    batch-level results (e.g. the content margin against the batch's other clips) never depend on
    how Ray Data happens to split blocks."""

    def __init__(self, make_worker: Callable[[Any], Any], spec: Any, task: Callable[[Any, Rows], Rows]) -> None:
        self.worker = make_worker(spec)
        self.task = task

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = [pickle.dumps(self.task(self.worker, pickle.loads(p))) for p in batch.column(PAYLOAD).to_pylist()]
        return pa.table({PAYLOAD: pa.array(out, pa.binary())})


def map_clips(rows: Rows, make_worker: Callable[[Any], Any], spec: Any, task: Callable[[Any, Rows], Rows], *,
              runner: str = "ray", settings: RaySettings | None = None, actors: int = 1,
              batch_size: int = 8, sort_key: str = "key") -> Rows:
    """``task`` over ``rows`` in batches of ``batch_size``; returns every output row."""
    if not rows:
        return []
    if runner == "local":
        from threadpoolctl import threadpool_limits

        worker = make_worker(spec)
        out: Rows = []
        # one BLAS thread, as a 1-CPU actor has (Ray sets OMP_NUM_THREADS=1): N threads round
        # matmuls differently, and the rows must not depend on the runner
        with threadpool_limits(limits=1, user_api="blas"):
            for first in range(0, len(rows), batch_size):
                out.extend(task(worker, rows[first:first + batch_size]))
        return sorted(out, key=lambda r: r[sort_key])
    groups = [{PAYLOAD: pickle.dumps(rows[first:first + batch_size])} for first in range(0, len(rows), batch_size)]
    with ray_session(settings) as ray:
        dataset = ray.data.from_items(groups).map_batches(
            _Actor, fn_constructor_kwargs={"make_worker": make_worker, "spec": spec, "task": task},
            batch_size=1, batch_format="pyarrow", concurrency=actors, num_cpus=1)
        out = [row for item in dataset.take_all() for row in pickle.loads(item[PAYLOAD])]
    return sorted(out, key=lambda r: r[sort_key])
