"""Read one segment's FLAC and JSON straight from its shard by byte range, never the whole tar.

The index gives ``shard`` (a file name), ``tar_offset`` (where the ``{key}.flac`` member's data
starts) and ``flac_bytes``. The shard name is checked to be a plain ``shard-*.tar`` (or held
``held-*.tar``) basename, so the only files this can open are shards of the dataset; the tar headers around the range are
checked to name ``{key}.flac`` (with that size) and ``{key}.json``, so a stale or forged index row
cannot make it return some other member's bytes.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from typing import Any

from audiomill import layout, storage

SHARD_NAME = re.compile(r"^(shard|held)-[A-Za-z0-9_-]+\.tar$")
"""Kept shards (``shards/shard-*.tar``) and held ones (``held/held-*.tar``: audio of policy-rejected
segments); ``layout.shard_uri`` picks the directory from the prefix."""
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
BLOCK = tarfile.BLOCKSIZE
MAX_FLAC_BYTES = 256 << 20  # 16 kHz mono FLAC: far more than any segment's hour
MAX_JSON_BYTES = 16 << 20
JSON_READ_AHEAD = 64 << 10  # read this much after the FLAC at once: most JSON members fit


class ShardReadError(ValueError):
    """An index row that does not point at a member this dataset can serve (bad name or bytes)."""


@dataclass(frozen=True)
class SegmentAudio:
    """A segment's stored FLAC bytes (16 kHz mono) and its parsed ``{key}.json`` member."""

    key: str
    flac: bytes
    meta: dict[str, Any]


def check_shard_name(name: Any) -> str:
    """``name`` if it is a plain ``shard-*.tar``/``held-*.tar`` basename (no separators, no ``..``)."""
    if not isinstance(name, str) or not SHARD_NAME.fullmatch(name):
        raise ShardReadError(f"refusing shard name {name!r}: not a plain shard-*.tar file name")
    return name


def shard_member_range(tar_offset: Any, flac_bytes: Any) -> tuple[int, int]:
    """Validated (offset, length) of a FLAC member's data; offsets follow a 512-byte header."""
    if not isinstance(tar_offset, int) or not isinstance(flac_bytes, int) or isinstance(tar_offset, bool):
        raise ShardReadError(f"byte range must be integers, got {tar_offset!r}, {flac_bytes!r}")
    if tar_offset < BLOCK or tar_offset % BLOCK:
        raise ShardReadError(f"tar_offset {tar_offset} is not a member data offset")
    if not 0 < flac_bytes <= MAX_FLAC_BYTES:
        raise ShardReadError(f"flac_bytes {flac_bytes} outside (0, {MAX_FLAC_BYTES}]")
    return tar_offset, flac_bytes


def read_segment(root: str, shard: Any, key: Any, tar_offset: Any, flac_bytes: Any) -> SegmentAudio:
    """The FLAC bytes and JSON metadata of segment ``key`` in ``shard`` under dataset ``root``."""
    name = check_shard_name(shard)
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise ShardReadError(f"refusing segment key {key!r}")
    offset, size = shard_member_range(tar_offset, flac_bytes)
    uri = layout.shard_uri(root, name)
    padded = -(-size // BLOCK) * BLOCK
    chunk = storage.read_bytes(uri, offset - BLOCK, BLOCK + padded + BLOCK + JSON_READ_AHEAD)
    _expect_member(chunk[:BLOCK], f"{key}.flac", size)
    flac = chunk[BLOCK:BLOCK + size]
    if len(flac) != size:
        raise ShardReadError(f"{name} ends inside {key}.flac")
    json_header = chunk[BLOCK + padded:BLOCK + padded + BLOCK]
    json_size = _expect_member(json_header, f"{key}.json", None)
    if json_size > MAX_JSON_BYTES:
        raise ShardReadError(f"{key}.json is {json_size} bytes, more than {MAX_JSON_BYTES}")
    start = BLOCK + padded + BLOCK
    raw = chunk[start:start + json_size]
    if len(raw) < json_size:
        raw = storage.read_bytes(uri, offset + padded + BLOCK, json_size)
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ShardReadError(f"{key}.json in {name} is not JSON: {err}") from None
    return SegmentAudio(key=key, flac=flac, meta=meta if isinstance(meta, dict) else {"value": meta})


def _expect_member(header: bytes, name: str, size: int | None) -> int:
    """Parse a tar header block and check it names ``name`` (and ``size``); returns the size."""
    try:
        info = tarfile.TarInfo.frombuf(header, tarfile.ENCODING, "surrogateescape")
    except tarfile.TarError as err:
        raise ShardReadError(f"no tar header for {name} where the index points: {err}") from None
    if info.name != name or (size is not None and info.size != size):
        raise ShardReadError(f"index points at {info.name!r} ({info.size} bytes), expected {name!r}")
    return info.size
