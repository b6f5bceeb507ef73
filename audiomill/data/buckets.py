"""Duration bucketing: batches of similar-length segments, each capped by total seconds.

Padding wastes compute in proportion to the spread of lengths in a batch, so segments are routed
to buckets by duration (boundaries at quantiles of the dataset's durations: equally full buckets)
and a bucket is emitted as a batch when the next segment would push it over ``max_batch_s``.
This streams: only the open buckets are held, never the epoch.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def quantile_boundaries(durations_s: Iterable[float], num_buckets: int) -> list[float]:
    """``num_buckets - 1`` inner boundaries (seconds) that split ``durations_s`` into equal shares."""
    values = np.asarray(list(durations_s), dtype=np.float64)
    if num_buckets <= 1 or values.size == 0:
        return []
    inner = np.quantile(values, np.linspace(0, 1, num_buckets + 1)[1:-1])
    return sorted(set(float(v) for v in inner))


def bucket_batches(items: Iterable[tuple[float, T]], max_batch_s: float, boundaries: list[float],
                   max_batch_size: int | None = None) -> Iterator[list[T]]:
    """Group ``(duration_s, item)`` pairs into batches of one bucket whose durations sum to at most
    ``max_batch_s`` (a single longer segment forms its own batch) and, if set, ``max_batch_size`` items."""
    if max_batch_s <= 0:
        raise ValueError(f"max_batch_s must be positive, got {max_batch_s}")
    open_items: list[list[T]] = [[] for _ in range(len(boundaries) + 1)]
    open_seconds = [0.0] * (len(boundaries) + 1)
    for duration, item in items:
        bucket = bisect.bisect_right(boundaries, duration)
        full = open_seconds[bucket] + duration > max_batch_s or (
            max_batch_size is not None and len(open_items[bucket]) >= max_batch_size)
        if open_items[bucket] and full:
            yield open_items[bucket]
            open_items[bucket], open_seconds[bucket] = [], 0.0
        open_items[bucket].append(item)
        open_seconds[bucket] += duration
    for batch in open_items:
        if batch:
            yield batch
