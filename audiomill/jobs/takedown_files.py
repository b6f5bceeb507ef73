"""File rewrites of a takedown: tars without the removed members, tables without the removed rows.

Every function here is idempotent for a fixed set of removed keys and sources: applying it to a
file already rewritten changes nothing, so an interrupted takedown resumes by running again. A
file that holds nothing to remove is never rewritten (its bytes stay identical).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audiomill import layout, schema, storage
from audiomill.formats.shards import repack_without
from audiomill.formats.tables import read_table, write_table

REMOVED_MARK = "<removed by takedown>"
CLUSTER_ID = "cluster_id"  # dedup.parquet: key of the kept segment a cluster is named after


@dataclass(frozen=True)
class Removal:
    """What goes: segment keys and source ids (source-level reject rows have no key)."""

    keys: frozenset[str]
    sources: frozenset[str]


@dataclass
class TarResult:
    """A tar after its repack: new member offsets (key -> offset, bytes), or deleted when emptied."""

    name: str
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    summary: dict[str, Any] | None = None  # None: the tar was deleted (or was already gone)
    rewritten: bool = False


def repack_tar(root: str, name: str, removal: Removal) -> TarResult:
    """Remove the removed keys' members from one shard or held tar (resumable: a repacked tar is
    only re-read for its offsets)."""
    uri = layout.shard_uri(root, name)
    if not storage.exists(uri):
        return TarResult(name)
    data = storage.read_bytes(uri)
    shard = repack_without(data, name, set(removal.keys))
    if shard is None:
        storage.delete(uri)
        return TarResult(name, rewritten=True)
    rewritten = shard.data != data
    if rewritten:
        storage.write_bytes(uri, shard.data)
    return TarResult(name, dict(shard.offsets), shard.summary(), rewritten)


def _removed_mask(table: pa.Table, removal: Removal) -> pa.ChunkedArray | None:
    masks = []
    if schema.KEY in table.column_names:
        masks.append(pc.is_in(table[schema.KEY], pa.array(sorted(removal.keys), pa.string())))
    if schema.SOURCE_ID in table.column_names:
        masks.append(pc.is_in(table[schema.SOURCE_ID], pa.array(sorted(removal.sources), pa.string())))
    if not masks:
        return None
    mask = masks[0]
    for other in masks[1:]:
        mask = pc.or_(mask, other)
    return pc.fill_null(mask, False)


def _scrub(table: pa.Table, removal: Removal) -> pa.Table:
    """Remaining rows that name a removed key (a dedup reject's original) forget it."""
    if schema.DUPLICATE_OF in table.column_names:
        values = table[schema.DUPLICATE_OF].to_pylist()
        table = _set(table, schema.DUPLICATE_OF, [None if v in removal.keys else v for v in values], pa.string())
    if schema.REJECT_DETAIL in table.column_names:
        details = table[schema.REJECT_DETAIL].to_pylist()
        for key in removal.keys:
            details = [d.replace(key, REMOVED_MARK) if d and key in d else d for d in details]
        table = _set(table, schema.REJECT_DETAIL, details, pa.string())
    if CLUSTER_ID in table.column_names and schema.KEY in table.column_names:
        clusters, keys = table[CLUSTER_ID].to_pylist(), table[schema.KEY].to_pylist()
        renamed: dict[str, str] = {}
        for cluster, key in sorted(zip(clusters, keys), key=lambda pair: pair[1]):
            if cluster in removal.keys:
                renamed.setdefault(cluster, key)  # named after its first remaining member
        table = _set(table, CLUSTER_ID, [renamed.get(c, c) for c in clusters], pa.string())
    return table


def _relocate(table: pa.Table, tars: dict[str, TarResult]) -> pa.Table:
    """Rows living in a repacked tar get that tar's new member offsets."""
    if schema.SHARD not in table.column_names or schema.KEY not in table.column_names:
        return table
    shards, keys = table[schema.SHARD].to_pylist(), table[schema.KEY].to_pylist()
    where = [tars[s].offsets.get(k) if s in tars else None for s, k in zip(shards, keys)]
    for position, name in ((0, schema.TAR_OFFSET), (1, schema.FLAC_BYTES)):
        old = table[name].to_pylist()
        table = _set(table, name, [w[position] if w else v for w, v in zip(where, old)],
                     table.schema.field(name).type)
    return table


def _set(table: pa.Table, name: str, values: list[Any], kind: pa.DataType) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, pa.array(values, kind))


def patch_table(uri: str, removal: Removal, tars: dict[str, TarResult]) -> tuple[int, bool]:
    """Rewrite one parquet file without removed rows (offsets and dedup links fixed); returns
    (rows removed, whether the file changed). Unchanged content is never rewritten."""
    if not storage.exists(uri):
        return 0, False
    table = read_table(uri)
    mask = _removed_mask(table, removal)
    removed = int(pc.sum(mask).as_py() or 0) if mask is not None else 0
    patched = table.filter(pc.invert(mask)) if removed else table
    patched = _relocate(_scrub(patched, removal), tars)
    if removed == 0 and patched.equals(table):
        return 0, False
    write_table(uri, patched.replace_schema_metadata(table.schema.metadata))
    return removed, True


def removed_rows(uri: str, removal: Removal) -> list[dict[str, Any]]:
    """The rows of one table file that the removal takes out (none if the file is absent)."""
    if not storage.exists(uri):
        return []
    table = read_table(uri)
    mask = _removed_mask(table, removal)
    return table.filter(mask).to_pylist() if mask is not None else []


def patch_marker(root: str, part_id: int, takedown_id: str, index_removed: list[dict[str, Any]],
                 rejects_removed: list[dict[str, Any]], deleted_tars: set[str]) -> bool:
    """Move a part's removed segments and sources out of its done-marker stats, so a later
    ``clean`` over the same inputs keeps the part done and its accounting right (removed sources
    count as rejected with reason ``takedown``). Applied once per takedown id."""
    uri = layout.marker_uri(root, part_id)
    if not storage.exists(uri) or not (index_removed or rejects_removed):
        return False
    marker = json.loads(storage.read_text(uri))
    if takedown_id in marker.get("takedowns", []):
        return False
    stats = marker["stats"]
    kept_gone = {r[schema.SOURCE_ID] for r in index_removed}
    sources_gone = kept_gone | {r[schema.SOURCE_ID] for r in rejects_removed}
    stats["segments"] -= len(index_removed)
    stats["seconds_out"] -= sum(r[schema.AUDIO_DURATION_S] or 0.0 for r in index_removed)
    stats["kept_sources"] -= len(kept_gone)
    stats["rejected_sources"] += len(kept_gone)
    reasons = Counter(stats.get("rejects_by_reason", {}))
    reasons.subtract(r[schema.REJECT_REASON] for r in rejects_removed)
    reasons[schema.RejectReason.TAKEDOWN.value] += len(sources_gone)
    stats["rejects_by_reason"] = {k: v for k, v in sorted(reasons.items()) if v > 0}
    for name in ("shards", "held_shards"):
        stats[name] = [s for s in stats.get(name, []) if s["name"] not in deleted_tars]
    marker["takedowns"] = [*marker.get("takedowns", []), takedown_id]
    storage.write_text(uri, json.dumps(marker, sort_keys=True))
    return True
