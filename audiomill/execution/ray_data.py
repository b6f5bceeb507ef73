"""A dataset's segments as a Ray Dataset: one block per shard, audio decoded in Ray workers.

The segment table (index + tokens/labels, filtered; ``audiomill.data.tables``) is built in the
driver (it holds no audio) and split into one Arrow block per shard; ``map_batches`` then reads
each shard once and adds an ``audio`` column (list<float32>, 16 kHz mono). Call inside
``execution.ray_session.ray_session()``; the returned dataset is lazy, so consume it there too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audiomill import schema
from audiomill.data.dataset import LoaderOptions
from audiomill.data.reader import decode_rows
from audiomill.data.tables import load_segments, parse_filter


def decode_shard_block(block: pa.Table, root: str) -> pa.Table:
    """Rows of one shard in, the same rows plus ``audio`` (list<float32>) out."""
    if block.num_rows == 0:
        return block.append_column(schema.AUDIO, pa.array([], pa.list_(pa.float32())))
    block = block.sort_by([(schema.SHARD, "ascending")])  # one shard per block, unless Ray merged some
    audio: list[np.ndarray] = []
    for shard in sorted(set(block[schema.SHARD].to_pylist())):
        rows = block.filter(pc.equal(block[schema.SHARD], shard))
        audio += [samples for _, samples in decode_rows(root, shard, rows.to_pylist())]
    offsets = np.concatenate([[0], np.cumsum([a.size for a in audio])]).astype(np.int32)
    values = pa.array(np.concatenate(audio) if audio else np.zeros(0, np.float32), pa.float32())
    return block.append_column(schema.AUDIO, pa.ListArray.from_arrays(pa.array(offsets), values))


def segment_ray_dataset(root: str, options: LoaderOptions | None = None) -> Any:
    """A lazy ``ray.data.Dataset`` of the dataset's segments (``options``: filters, tokens, labels,
    columns, and shuffle/seed for a seeded shard order; batching is Ray's ``iter_batches``)."""
    import ray

    options = options or LoaderOptions()
    filters = tuple(parse_filter(f) if isinstance(f, str) else f for f in options.filters)
    table = load_segments(str(root), options.tokens, options.labels, filters)
    if options.columns is not None:
        keep = (schema.KEY, schema.SHARD, schema.TAR_OFFSET, schema.FLAC_BYTES, *options.columns)
        table = table.select(list(dict.fromkeys(keep)))
    shards = sorted(set(table[schema.SHARD].to_pylist()))
    blocks = [table.filter(pc.equal(table[schema.SHARD], s)) for s in shards] or [table]
    dataset = ray.data.from_arrow(blocks)
    if options.shuffle:
        dataset = dataset.randomize_block_order(seed=options.seed)
    return dataset.map_batches(decode_shard_block, batch_size=None, batch_format="pyarrow",
                               fn_kwargs={"root": str(root)})
