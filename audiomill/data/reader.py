"""Decode segments of one shard by the index's byte offsets: one read per shard, no tar scan.

The index says where each ``{key}.flac`` member's data starts (``tar_offset``) and how long it is
(``flac_bytes``); the tar header just before it is checked to name that key, so an index that no
longer matches its shard fails loudly instead of yielding another segment's audio.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from audiomill import layout, schema, storage
from audiomill.audio import decode_flac

BLOCK = tarfile.BLOCKSIZE


class ShardMismatchError(RuntimeError):
    """A shard's bytes do not hold the member the index points at."""


def flac_member(shard_bytes: bytes, key: str, offset: int, size: int, shard: str) -> bytes:
    """The FLAC data of ``key`` inside a shard's bytes, after checking the member header."""
    if offset < BLOCK or offset + size > len(shard_bytes):
        raise ShardMismatchError(f"{shard}: {key} at {offset}+{size} lies outside the shard "
                                 f"({len(shard_bytes)} bytes)")
    try:
        info = tarfile.TarInfo.frombuf(shard_bytes[offset - BLOCK:offset], tarfile.ENCODING, "surrogateescape")
    except tarfile.TarError as err:
        raise ShardMismatchError(f"{shard}: no tar header before {key}: {err}") from None
    if info.name != f"{key}.flac" or info.size != size:
        raise ShardMismatchError(f"{shard}: index points at {info.name!r} ({info.size} bytes), "
                                 f"expected {key}.flac ({size} bytes)")
    return shard_bytes[offset:offset + size]


def read_shard(root: str, shard: str) -> bytes:
    return storage.read_bytes(layout.shard_uri(root, shard))


def decode_rows(root: str, shard: str, rows: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
    """``(row, float32 16 kHz samples)`` for index rows that all live in ``shard``, in the given order."""
    data = read_shard(root, shard)
    for row in rows:
        flac = flac_member(data, row[schema.KEY], int(row[schema.TAR_OFFSET]), int(row[schema.FLAC_BYTES]), shard)
        yield row, decode_flac(flac)
