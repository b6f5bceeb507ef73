"""Writer stage: per part, shards + index/rejects tables + a done marker written last.

Each part's outputs are written atomically (one object each) before its marker, so a part is
either complete on disk or redone by the next run. A batch may hold several parts, but never a
part split in two: the writer checks that every source of a part is present.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audiomill import layout, schema, storage
from audiomill.config import ShardConfig
from audiomill.curation.dedup.features import split_features
from audiomill.formats.shards import pack_shards
from audiomill.formats.tables import write_table
from audiomill.manifest import PartStats, ShardSummary
from audiomill.pipelines.base import Resources, Stage, split_rejected
from audiomill.schema import conform

STATS_JSON = "stats_json"
STATS_SCHEMA = pa.schema([pa.field(schema.PART_ID, pa.int32()), pa.field(STATS_JSON, pa.string())])


class PartIncompleteError(RuntimeError):
    """A part reached the writer split across batches (a runner bug, never bad input)."""


class WriterStage(Stage):
    """Segment and reject rows in; one stats row per written part out."""

    name = schema.StageName.WRITE.value
    resources = Resources(num_cpus=1.0)
    requires = frozenset({schema.PART_ID, schema.PART_SOURCES, schema.PART_FINGERPRINT, schema.SOURCE_ID,
                          schema.AUDIO_DURATION_S})

    def __init__(self, output: str, cfg: ShardConfig, config_fingerprint: str) -> None:
        super().__init__()
        self.output = output
        self.cfg = cfg
        self.config_fingerprint = config_fingerprint

    def __call__(self, table: pa.Table) -> pa.Table:  # no pass-through of rejects: all rows are ours
        if not self._ready:
            self.setup()
            self._ready = True
        return self.process(table)

    def process(self, table: pa.Table) -> pa.Table:
        stats_rows = []
        for part_id in sorted(set(table[schema.PART_ID].to_pylist())):
            rows = table.filter(pc.equal(table[schema.PART_ID], part_id))
            stats = self.write_part(part_id, rows)
            stats_rows.append({schema.PART_ID: part_id, STATS_JSON: json.dumps(stats.to_dict(), sort_keys=True)})
        return pa.Table.from_pylist(stats_rows, schema=STATS_SCHEMA)

    def write_part(self, part_id: int, rows: pa.Table) -> PartStats:
        started = time.perf_counter()
        expected = rows[schema.PART_SOURCES][0].as_py()
        source_ids = set(rows[schema.SOURCE_ID].to_pylist())
        if len(source_ids) != expected:
            raise PartIncompleteError(f"part {part_id}: {len(source_ids)} of {expected} sources in one batch")
        kept, rejected = split_rejected(rows)
        kept, features = split_features(kept)  # dedup features go to their own table, not index/shards
        rejected = rejected.drop_columns([c for c in rejected.column_names if schema.is_dedup_feature(c)])
        kept_rows = kept.to_pylist()
        shards = []
        offsets: dict[str, tuple[str, int, int]] = {}
        for shard in pack_shards(kept_rows, part_id, self.cfg):
            storage.write_bytes(layout.shard_uri(self.output, shard.name), shard.data)
            offsets.update({k: (shard.name, o, n) for k, (o, n) in shard.offsets.items()})
            shards.append(ShardSummary.from_dict(shard.summary()))
        held_shards = []  # policy-rejected segments keep their audio for `audiomill curate`
        for shard in pack_shards(_held_rows(rejected), part_id, self.cfg, prefix=layout.HELD_PREFIX):
            storage.write_bytes(layout.shard_uri(self.output, shard.name), shard.data)
            offsets.update({k: (shard.name, o, n) for k, (o, n) in shard.offsets.items()})
            held_shards.append(ShardSummary.from_dict(shard.summary()))
        index = _index_table(kept, offsets)
        rejects = _reject_table(rejected, offsets)
        write_table(layout.part_file(self.output, part_id, layout.INDEX_FILE), index)
        write_table(layout.part_file(self.output, part_id, layout.REJECTS_FILE), rejects)
        write_table(layout.part_file(self.output, part_id, layout.FEATURES_FILE), features)
        stats = _part_stats(rows, kept, rejected, shards, held_shards)
        if not stats.accounted:
            raise RuntimeError(f"part {part_id}: accounting broken {stats}")
        stats = stats.with_stage_seconds(self.name, time.perf_counter() - started)
        marker = {"part_id": part_id, "config_fingerprint": self.config_fingerprint,
                  "part_fingerprint": rows[schema.PART_FINGERPRINT][0].as_py(), "stats": stats.to_dict()}
        storage.write_text(layout.marker_uri(self.output, part_id), json.dumps(marker, sort_keys=True))
        return stats


def _index_table(kept: pa.Table, offsets: dict[str, tuple[str, int, int]]) -> pa.Table:
    if kept.num_rows == 0:
        return conform(kept.slice(0, 0), schema.INDEX_SCHEMA).select(schema.INDEX_SCHEMA.names)
    keys = kept[schema.KEY].to_pylist()
    columns = [c for c in kept.column_names if c not in schema.NOT_INDEXED and not schema.is_timing_column(c)]
    index = kept.select(columns)
    index = index.append_column(schema.SHARD, pa.array([offsets[k][0] for k in keys], pa.string()))
    index = index.append_column(schema.TAR_OFFSET, pa.array([offsets[k][1] for k in keys], pa.int64()))
    index = index.append_column(schema.FLAC_BYTES, pa.array([offsets[k][2] for k in keys], pa.int64()))
    index = index.sort_by(schema.KEY)
    return conform(index, schema.INDEX_SCHEMA)


def _held_rows(rejected: pa.Table) -> list[dict[str, Any]]:
    """Rejected segments that still carry audio (policy rejects), without their reject columns."""
    if schema.AUDIO not in rejected.column_names or rejected.num_rows == 0:
        return []
    held = rejected.filter(pc.is_valid(rejected[schema.AUDIO]))
    return held.drop_columns([f.name for f in schema.REJECT_FIELDS]).to_pylist()


def _reject_table(rejected: pa.Table, offsets: dict[str, tuple[str, int, int]]) -> pa.Table:
    """Reject rows plus their metric columns; held segments also get shard/offset/bytes."""
    keys = rejected[schema.KEY].to_pylist() if schema.KEY in rejected.column_names else [None] * rejected.num_rows
    where = [offsets.get(k) if k else None for k in keys]
    for position, (name, kind) in enumerate(((schema.SHARD, pa.string()), (schema.TAR_OFFSET, pa.int64()),
                                             (schema.FLAC_BYTES, pa.int64()))):
        rejected = rejected.append_column(name, pa.array([w[position] if w else None for w in where], kind))
    ordered = conform(rejected, schema.REJECT_SCHEMA)
    return ordered.sort_by([(schema.SOURCE_URI, "ascending"), (schema.KEY, "ascending")])


def _part_stats(rows: pa.Table, kept: pa.Table, rejected: pa.Table, shards: list[ShardSummary],
                held_shards: list[ShardSummary]) -> PartStats:
    """Counts, audio seconds and per-stage seconds of one part (summed later for the manifest)."""
    durations: dict[str, float] = {}
    for sid, seconds in zip(rows[schema.SOURCE_ID].to_pylist(),
                            rows[schema.ORIG_DURATION_S].to_pylist() if schema.ORIG_DURATION_S in rows.column_names
                            else [None] * rows.num_rows):
        if seconds is not None:
            durations[sid] = seconds
    stage_seconds = {name[len(schema.TIMING_PREFIX):-len(schema.TIMING_SUFFIX)]: pc.sum(rows[name]).as_py() or 0.0
                     for name in rows.column_names if schema.is_timing_column(name)}
    reasons = Counter(rejected[schema.REJECT_REASON].to_pylist()) if rejected.num_rows else Counter()
    out_seconds = pc.sum(kept[schema.AUDIO_DURATION_S]).as_py() if kept.num_rows else 0.0
    sizes = dict(zip(rows[schema.SOURCE_ID].to_pylist(), rows[schema.SOURCE_BYTES].to_pylist()))
    kept_ids = set(kept[schema.SOURCE_ID].to_pylist())
    return PartStats(
        sources=len(sizes),
        kept_sources=len(kept_ids),
        # a source counts as rejected only if none of its segments was kept
        rejected_sources=len(set(rejected[schema.SOURCE_ID].to_pylist()) - kept_ids),
        segments=kept.num_rows,
        seconds_in=sum(durations.values()),
        seconds_out=out_seconds or 0.0,
        bytes_in=sum(b or 0 for b in sizes.values()),
        rejects_by_reason=dict(sorted(reasons.items())),
        stage_seconds=stage_seconds,
        shards=tuple(shards),
        held_shards=tuple(held_shards),
    )
