"""``SegmentDataset``: a torch ``IterableDataset`` over a dataset's shards, index and side tables.

Each epoch the shards are shuffled with ``(seed, epoch)`` and so are the segments inside each
shard; the shuffled shards are dealt out to consumers (``rank`` x DataLoader worker), so every
consumer reads whole shards (one read each) and no segment is seen twice in an epoch. With fewer
shards than consumers, every consumer reads every shard and keeps every n-th segment instead.

Samples are dicts: ``key``, ``audio`` (float32 numpy, 16 kHz mono), ``sample_rate`` and the
segment table's columns (index metrics, joined tokens/labels). With ``max_batch_s`` the dataset
yields duration-bucketed lists of samples instead; ``collate_padded`` turns either into tensors.

Call ``set_epoch(n)`` before iterating each epoch (DataLoader workers copy the dataset when an
iterator starts, so do not combine it with ``persistent_workers=True``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import torch
from torch.utils.data import IterableDataset, get_worker_info

from audiomill import schema
from audiomill.data.buckets import bucket_batches, quantile_boundaries
from audiomill.data.reader import decode_rows
from audiomill.data.tables import ColumnFilter, load_segments, parse_filter

logger = logging.getLogger(__name__)
AUDIO_LENS = "audio_lens"


@dataclass(frozen=True)
class LoaderOptions:
    """What to load and how to deal it out. Durations in seconds.

    ``filters``: ``"q_snr_db>=20"``-style strings or ColumnFilter, over any column of the joined
    table. ``tokens``: token table names (``semantic@1``); ``labels``: rounds (``round-001``).
    ``columns``: table columns each sample carries (None: all). ``rank``/``world_size``: this
    process's share in distributed training (None: from ``torch.distributed`` when initialised).
    """

    filters: tuple[str | ColumnFilter, ...] = ()
    tokens: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = None
    shuffle: bool = True
    seed: int = 0
    rank: int | None = None
    world_size: int | None = None
    max_batch_s: float | None = None
    max_batch_size: int | None = None
    num_buckets: int = 4


def epoch_plan(table: pa.Table, seed: int, epoch: int, shuffle: bool) -> list[tuple[str, list[int]]]:
    """``(shard, row positions)`` in this epoch's order; the same seed and epoch give the same plan."""
    shards: dict[str, list[int]] = {}
    for position, shard in enumerate(table[schema.SHARD].to_pylist()):
        shards.setdefault(shard, []).append(position)
    plan = sorted(shards.items())
    if shuffle:
        rng = random.Random(f"{seed}:{epoch}")
        rng.shuffle(plan)
        for _, rows in plan:
            rng.shuffle(rows)
    return plan


def consumer_share(plan: list[tuple[str, list[int]]], consumer: int, consumers: int
                   ) -> list[tuple[str, list[int]]]:
    """The part of an epoch one of ``consumers`` reads: whole shards when there are enough."""
    if len(plan) >= consumers:
        return plan[consumer::consumers]
    share, seen = [], 0
    for shard, rows in plan:
        mine = [r for n, r in enumerate(rows, start=seen) if n % consumers == consumer]
        seen += len(rows)
        if mine:
            share.append((shard, mine))
    return share


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class SegmentDataset(IterableDataset):
    """Segments of one dataset (local dir or s3:// prefix) as samples or duration-bucketed batches."""

    def __init__(self, root: str, options: LoaderOptions | None = None) -> None:
        super().__init__()
        self.root = str(root)
        self.options = options or LoaderOptions()
        filters = tuple(parse_filter(f) if isinstance(f, str) else f for f in self.options.filters)
        self.table = load_segments(self.root, self.options.tokens, self.options.labels, filters)
        self.boundaries = quantile_boundaries(self.table[schema.AUDIO_DURATION_S].to_pylist(),
                                              self.options.num_buckets)
        self.epoch = 0
        logger.info("%s: %d segments in %d shards after filters", self.root, self.table.num_rows,
                    len(set(self.table[schema.SHARD].to_pylist())))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def consumer(self) -> tuple[int, int]:
        """(this consumer's number, how many there are) over ranks x DataLoader workers."""
        rank, world = _distributed()
        rank = self.options.rank if self.options.rank is not None else rank
        world = self.options.world_size if self.options.world_size is not None else world
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world_size {world}")
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        return rank * workers + worker, world * workers

    def samples(self) -> Iterator[dict[str, Any]]:
        """This consumer's samples for the current epoch."""
        consumer, consumers = self.consumer()
        plan = epoch_plan(self.table, self.options.seed, self.epoch, self.options.shuffle)
        columns = self.options.columns or tuple(self.table.column_names)
        for shard, positions in consumer_share(plan, consumer, consumers):
            rows = self.table.take(positions).select(list(dict.fromkeys((schema.KEY, schema.TAR_OFFSET,
                                                                          schema.FLAC_BYTES, *columns))))
            for row, audio in decode_rows(self.root, shard, rows.to_pylist()):
                sample = {name: row[name] for name in columns}
                sample.update({schema.KEY: row[schema.KEY], schema.AUDIO: audio,
                               "sample_rate": schema.SAMPLE_RATE})
                yield sample

    def __iter__(self) -> Iterator[Any]:
        if self.options.max_batch_s is None:
            return self.samples()
        pairs = ((s[schema.AUDIO].size / schema.SAMPLE_RATE, s) for s in self.samples())
        return bucket_batches(pairs, self.options.max_batch_s, self.boundaries, self.options.max_batch_size)


def collate_padded(samples: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """A batch: ``audio`` zero-padded to ``[batch, longest]`` float32, ``audio_lens`` (samples, int64),
    numeric columns without nulls as tensors, everything else as lists."""
    if isinstance(samples, dict):
        samples = [samples]
    lengths = [s[schema.AUDIO].size for s in samples]
    audio = torch.zeros(len(samples), max(lengths, default=0), dtype=torch.float32)
    for position, sample in enumerate(samples):
        audio[position, : lengths[position]] = torch.from_numpy(sample[schema.AUDIO])
    batch: dict[str, Any] = {schema.AUDIO: audio, AUDIO_LENS: torch.tensor(lengths, dtype=torch.int64)}
    for name in samples[0] if samples else ():
        if name == schema.AUDIO:
            continue
        values = [s[name] for s in samples]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        batch[name] = torch.tensor(values) if numeric else values
    return batch
