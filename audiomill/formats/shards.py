"""WebDataset shard packing: sorted keys, ``{key}.flac`` + ``{key}.json``, size-targeted tars.

Tars are byte-deterministic: fixed mtime/uid/gid/mode, USTAR headers, members in key order, so a
rerun or a resumed run produces the same shards and the same sha256.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soundfile as sf
import pyarrow as pa

from audiomill import layout, schema, storage
from audiomill.audio import encode_flac
from audiomill.config import ShardConfig
from audiomill.manifest import ShardSummary

TAR_MTIME = 946_684_800  # 2000-01-01T00:00:00Z, fixed so shards are byte-identical across runs
_TAR_HEADER_BYTES = tarfile.BLOCKSIZE  # one USTAR header block per member (names are short)
_EXCLUDED_FROM_JSON = {schema.AUDIO, schema.PART_ID, schema.PART_SOURCES, schema.PART_FINGERPRINT,
                       schema.READ_URI, schema.SOURCE_OFFSET}


def shard_name(part_id: int, number: int, prefix: str = "shard") -> str:
    return f"{prefix}-{part_id:06d}-{number:03d}.tar"


@dataclass
class ShardInfo:
    name: str
    data: bytes = b""
    samples: int = 0
    seconds: float = 0.0
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (data offset, bytes)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": len(self.data), "samples": self.samples,
                "seconds": round(self.seconds, 3), "sha256": self.sha256}


def segment_json(row: dict[str, Any]) -> dict[str, Any]:
    """The ``{key}.json`` member: every non-audio column of the row, metadata parsed."""
    meta: dict[str, Any] = {}
    for name, value in row.items():
        if name in _EXCLUDED_FROM_JSON or schema.is_timing_column(name):
            continue
        if name == schema.METADATA_JSON:
            meta["metadata"] = json.loads(value) if value else {}
        elif isinstance(value, float) and not math.isfinite(value):
            meta[name] = None
        else:
            meta[name] = value
    meta["sample_rate"] = schema.SAMPLE_RATE
    meta["audio_format"] = "flac/pcm_16/mono"
    return meta


def pack_shards(rows: list[dict[str, Any]], part_id: int, cfg: ShardConfig,
                prefix: str = "shard") -> Iterator[ShardInfo]:
    """Pack segment rows (each with ``key`` and ``audio`` float32 bytes) into shards, in key order."""
    rows = sorted(rows, key=lambda r: r[schema.KEY])
    number = 0
    buffer, tar, shard = _open_shard(part_id, number, prefix)
    for row in rows:
        samples = np.frombuffer(row[schema.AUDIO], dtype=np.float32)
        flac = encode_flac(samples, cfg.flac_compression)
        meta = json.dumps(segment_json(row), sort_keys=True, ensure_ascii=False).encode()
        key = row[schema.KEY]
        shard.offsets[key] = (_add_member(tar, f"{key}.flac", flac), len(flac))
        _add_member(tar, f"{key}.json", meta)
        shard.samples += 1
        shard.seconds += samples.size / schema.SAMPLE_RATE
        if buffer.tell() >= cfg.target_bytes or shard.samples >= cfg.max_samples:
            yield _close_shard(buffer, tar, shard)
            number += 1
            buffer, tar, shard = _open_shard(part_id, number, prefix)
    if shard.samples:
        yield _close_shard(buffer, tar, shard)


def _open_shard(part_id: int, number: int, prefix: str) -> tuple[io.BytesIO, tarfile.TarFile, ShardInfo]:
    buffer = io.BytesIO()
    tar = tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT)
    return buffer, tar, ShardInfo(shard_name(part_id, number, prefix))


def _close_shard(buffer: io.BytesIO, tar: tarfile.TarFile, shard: ShardInfo) -> ShardInfo:
    tar.close()
    shard.data = buffer.getvalue()
    return shard


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> int:
    """Add one file member; returns the byte offset of its data inside the tar."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = TAR_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    header_offset = tar.offset
    tar.addfile(info, io.BytesIO(data))
    return header_offset + _TAR_HEADER_BYTES


class MissingMemberError(RuntimeError):
    """A shard lacks a segment its part index lists (its audio was removed outside audiomill)."""


Members = dict[str, list[tuple[tarfile.TarInfo, bytes]]]
"""key -> that key's tar members (info, data) in tar order."""


def read_members(uri: str) -> Members:
    """Every member of the tar at ``uri``, grouped by key (the name up to its first dot)."""
    members: Members = {}
    with tarfile.open(fileobj=io.BytesIO(storage.read_bytes(uri))) as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info).read() if info.isfile() else b""
            members.setdefault(info.name.split(".", 1)[0], []).append((info, data))
    return members


def write_members(members: Members, keys: list[str], name: str) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """A tar of ``keys``' members in key order; key -> (flac data offset, flac bytes)."""
    buffer = io.BytesIO()
    offsets = {}
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key in keys:
            if key not in members:
                raise MissingMemberError(f"segment {key} of {name} is in its part index but in neither its "
                                         "shard nor its held tar; delete that part's _DONE.json and rerun")
            for info, data in members[key]:
                header = tar.offset
                tar.addfile(copy.copy(info), io.BytesIO(data))
                if info.name.endswith(".flac"):
                    offsets[key] = (header + tarfile.BLOCKSIZE, len(data))
    return buffer.getvalue(), offsets


def member_bytes(members: list[tuple[tarfile.TarInfo, bytes]]) -> int:
    """Bytes one key's members take in a tar: a header block each, data padded to whole blocks."""
    return sum(tarfile.BLOCKSIZE * (1 + -(-len(data) // tarfile.BLOCKSIZE)) for _, data in members)


def link_tars(root: str, target: str, names: list[str]) -> None:
    """Put the tars ``names`` of the dataset at ``root`` into ``target``: hard-linked where both are
    local (a copy across filesystems), copied otherwise; never re-packed."""
    for name in names:
        source, dest = layout.shard_uri(root, name), layout.shard_uri(target, name)
        local_source, local_dest = storage.local_path(source), storage.local_path(dest)
        if local_source and local_dest:
            os.makedirs(os.path.dirname(local_dest), exist_ok=True)
            if os.path.exists(local_dest):
                os.remove(local_dest)
            try:
                os.link(local_source, local_dest)
            except OSError:  # another filesystem: copy
                shutil.copyfile(local_source, local_dest)
        else:
            storage.write_bytes(dest, storage.read_bytes(source))


def summarize(name: str, data: bytes, keys: list[str], durations: dict[str, float]) -> ShardSummary:
    """The manifest's record of a rewritten tar (``seconds`` rounded like the writer's)."""
    return ShardSummary(name=name, bytes=len(data), samples=len(keys),
                        seconds=round(sum(durations[k] or 0.0 for k in keys), 3),
                        sha256=hashlib.sha256(data).hexdigest())


@dataclass
class Rewrite:
    """Result of :func:`rewrite_tars`: new summaries, emptied (deleted) tars, moved members."""

    written: dict[str, ShardSummary] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    locations: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # key -> tar, offset, bytes


def rewrite_tars(root: str, keys_by_name: dict[str, list[str]], durations: dict[str, float]) -> Rewrite:
    """Rebuild a group of tars (e.g. a shard and its held companion) from the union of their
    members: each named tar gets exactly its keys, in key order; a tar given no key is deleted.

    Building from the union every time means moving a segment back and forth loses nothing.
    """
    members: Members = {}
    for name in keys_by_name:
        uri = layout.shard_uri(root, name)
        if storage.exists(uri):
            members.update(read_members(uri))
    result = Rewrite()
    for name, keys in keys_by_name.items():
        uri = layout.shard_uri(root, name)
        if not keys:
            result.removed.append(name)
            if storage.exists(uri):
                storage.delete(uri)
            continue
        keys = sorted(keys)
        data, offsets = write_members(members, keys, name)
        storage.write_bytes(uri, data)
        result.written[name] = summarize(name, data, keys, durations)
        result.locations.update({k: (name, *offsets[k]) for k in keys})
    return result


def with_locations(table: pa.Table, locations: dict[str, tuple[str, int, int]]) -> pa.Table:
    """``table`` with ``shard``/``tar_offset``/``flac_bytes`` of the rows whose key moved updated."""
    if not locations or table.num_rows == 0:
        return table
    keys = table[schema.KEY].to_pylist()
    for position, name in enumerate((schema.SHARD, schema.TAR_OFFSET, schema.FLAC_BYTES)):
        old = table[name].to_pylist()
        new = [locations[k][position] if k in locations else v for k, v in zip(keys, old)]
        table = table.set_column(table.column_names.index(name), name, pa.array(new, table.schema.field(name).type))
    return table


def repack_without(data: bytes, name: str, drop: set[str]) -> ShardInfo | None:
    """The shard ``name`` (its tar bytes) without the members of keys in ``drop``; None if none remain.

    Members are copied byte for byte in their order with the same headers as ``pack_shards``
    writes, so the rest of the shard is unchanged and a repack that drops nothing is identical.
    """
    buffer = io.BytesIO()
    shard = ShardInfo(name)
    with tarfile.open(fileobj=io.BytesIO(data)) as source, \
            tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for member in source.getmembers():
            key, _, extension = member.name.partition(".")
            if key in drop or not member.isfile():
                continue
            payload = source.extractfile(member).read()
            offset = _add_member(tar, member.name, payload)
            if extension == "flac":
                shard.offsets[key] = (offset, len(payload))
                shard.samples += 1
                shard.seconds += sf.info(io.BytesIO(payload)).frames / schema.SAMPLE_RATE
    if not shard.samples:
        return None
    shard.data = buffer.getvalue()
    return shard
