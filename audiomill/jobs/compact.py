"""``audiomill compact``: repack a finished dataset's small shards into shards of a useful size.

A part is the unit of work and of resume, and shards never span parts, so a corpus of many small
parts (short files, or a high reject rate: ~10% of the audio survives at scale) ends as many
small tars. ``compact`` writes a *new* dataset (a release) whose ``shards/`` are packs of
consecutive index rows filled to ``target_bytes``: members are copied byte for byte (FLAC and
JSON untouched), in index order, so the audio, metadata and every sidecar keyed by segment key
(dedup table, tokens, labels) stay valid. The index gets the new shard names and offsets; held
tars are hard-linked (or copied) so rejects still point at their audio. The source dataset is
never modified, so resuming or re-cleaning it stays byte-identical; compact again after that.
The output is deterministic: the same dataset and sizes give the same bytes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from audiomill import layout, schema, storage
from audiomill.ingest_safety import normalized
from audiomill.formats.shards import Members, link_tars, member_bytes, read_members, summarize, with_locations, \
    write_members
from audiomill.formats.tables import read_table, write_table
from audiomill.jobs.lock import output_lock
from audiomill.manifest import Manifest, ShardSummary, read_manifest

logger = logging.getLogger(__name__)

PACK_PREFIX = "shard-pack-"
SIDECARS = (layout.DEDUP_FILE, layout.TOKENS_DIR, layout.LABELS_DIR)  # keyed by segment key: valid after a repack


class CompactError(RuntimeError):
    """The dataset cannot be compacted as asked (``--out`` is the dataset or already holds one)."""


@dataclass(frozen=True)
class CompactOptions:
    """A pack closes once it reaches ``target_bytes`` or ``max_samples`` (like the writer's shards)."""

    target_bytes: int = 256 * 1024**2
    max_samples: int = 10_000

    def __post_init__(self) -> None:
        if self.target_bytes <= 0 or self.max_samples <= 0:
            raise ValueError("target_bytes and max_samples must be positive")


def pack_name(number: int) -> str:
    return f"{PACK_PREFIX}{number:06d}.tar"


def compact_dataset(root: str, out: str, options: CompactOptions = CompactOptions(),
                    progress: Callable[[str], None] = logger.info) -> Manifest:
    """Write the compacted copy of the dataset at ``root`` to ``out``; returns its manifest."""
    if normalized(out) == normalized(root):
        raise CompactError("compact writes a new dataset: --out must not be the dataset itself")
    manifest = read_manifest(root)
    with output_lock(out):
        _check_target(out)
        index = read_table(storage.join(root, layout.INDEX_FILE))
        started = time.perf_counter()
        locations: dict[str, tuple[str, int, int]] = {}
        packs: list[ShardSummary] = []
        durations = dict(zip(index[schema.KEY].to_pylist(), index[schema.AUDIO_DURATION_S].to_pylist()))
        for name, keys, members in _packs(root, index, options):
            data, offsets = write_members(members, keys, name)
            storage.write_bytes(layout.shard_uri(out, name), data)
            packs.append(summarize(name, data, keys, durations))
            locations.update({k: (name, *offsets[k]) for k in keys})
            progress(f"{name}: {len(keys)} segments, {len(data) / 1024**2:.1f} MiB")
        write_table(storage.join(out, layout.INDEX_FILE), with_locations(index, locations))
        link_tars(root, out, [s.name for s in manifest.held_shards])
        for name in (layout.REJECTS_FILE, *SIDECARS):
            _copy_tree(storage.join(root, name), storage.join(out, name))
        record = {"from": storage.redact(root), "source_shards": len(manifest.shards),
                  "target_bytes": options.target_bytes, "max_samples": options.max_samples,
                  "wall_s": round(time.perf_counter() - started, 3)}
        compacted = manifest.replace(shards=tuple(packs),
                                     counts=dataclasses.replace(manifest.counts, shards=len(packs)),
                                     extra={**manifest.extra, "compacted": record})
        storage.write_text(storage.join(out, layout.MANIFEST_FILE), compacted.to_json())
    return compacted


def _check_target(out: str) -> None:
    """Refuse a dataset or foreign shards in ``out``; clear the packs of an interrupted compact (its
    manifest, written last, is missing) so the rerun writes them again."""
    if storage.exists(storage.join(out, layout.MANIFEST_FILE)):
        raise CompactError(f"{storage.redact(out)} already holds a dataset; choose an empty --out")
    if not storage.exists(layout.shards_dir(out)):
        return
    files = list(storage.list_files(layout.shards_dir(out)))
    foreign = [f.uri for f in files if not f.uri.rsplit("/", 1)[-1].startswith(PACK_PREFIX)]
    if foreign:
        raise CompactError(f"{storage.redact(out)}/shards holds other tars ({len(foreign)}); choose an empty --out")
    for info in files:
        storage.delete(info.uri)


def _packs(root: str, index: pa.Table, options: CompactOptions) -> Iterator[tuple[str, list[str], Members]]:
    """(pack name, keys, their members) of consecutive index rows; one source shard read at a time."""
    number, keys, members, size = 0, [], {}, 0
    loaded_name, loaded = None, {}
    for key, shard in zip(index[schema.KEY].to_pylist(), index[schema.SHARD].to_pylist()):
        if shard != loaded_name:  # index rows of one shard are consecutive (part order, then key)
            loaded_name, loaded = shard, read_members(layout.shard_uri(root, shard))
        if key not in loaded:
            raise CompactError(f"segment {key} is in the index but not in its shard {shard}")
        keys.append(key)
        members[key] = loaded[key]
        size += member_bytes(loaded[key])
        if size >= options.target_bytes or len(keys) >= options.max_samples:
            yield pack_name(number), keys, members
            number, keys, members, size = number + 1, [], {}, 0
    if keys:
        yield pack_name(number), keys, members


def _copy_tree(source: str, target: str) -> None:
    """Copy a file or every file under a directory (small tables: rejects, dedup, tokens, labels)."""
    if not storage.exists(source):
        return
    prefix = source.rstrip("/")
    for info in storage.list_files(source):
        relative = info.uri[len(prefix):].lstrip("/")
        storage.write_bytes(storage.join(target, relative) if relative else target, storage.read_bytes(info.uri))
