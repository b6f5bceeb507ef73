"""Pin BLAS to one thread around model calls, so results do not depend on the runner.

numpy's OpenBLAS splits a matmul differently with 1 thread than with N, and rounds differently;
an int8 model downstream amplifies that. Ray actors get ``OMP_NUM_THREADS=<num_cpus>`` while
the driver gets all cores, so without the pin the same clip gave different Whisper log-probs (and
~1% different tokenizer ids) under ``--runner ray`` and ``--runner local``. One thread per worker
is also what a worker that declared its CPUs should use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def one_blas_thread(fn: F) -> F:
    @functools.wraps(fn)
    def pinned(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return pinned  # type: ignore[return-value]
