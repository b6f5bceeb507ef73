"""Apply dedup decisions to a finished part: shards, index rows, reject rows and stats.

Dropped segments leave the kept shards: each affected ``shard-P-N.tar`` is rewritten without them
and their members go to a companion ``held-dup-P-N.tar`` (held audio, like policy rejects), which
the reject rows point at (a shard left with no segment is deleted). Both are rebuilt from the
union of the two tars every time, so running the global step again with other decisions moves
members back instead of losing them; the part's own index and rejects (the writer's) are never
modified.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from audiomill import layout, schema
from audiomill.curation.dedup.cluster import Decision
from audiomill.formats.shards import rewrite_tars, with_locations
from audiomill.manifest import PartStats, ShardSummary
from audiomill.schema import conform

DUP_PREFIX = f"{layout.HELD_PREFIX}-dup-"


@dataclass
class PartPatch:
    """What dedup changes in one part's outputs."""

    dropped: dict[str, Decision] = field(default_factory=dict)
    locations: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # key -> shard, offset, bytes
    shard_summaries: dict[str, ShardSummary] = field(default_factory=dict)  # rewritten kept shards
    removed_shards: set[str] = field(default_factory=set)  # kept shards left with no segment
    held_summaries: list[ShardSummary] = field(default_factory=list)  # held-dup tars

    def index(self, table: pa.Table) -> pa.Table:
        """The part index without dropped rows, offsets updated where shards were rewritten."""
        if not self.dropped and not self.locations:
            return table
        keep = pc.invert(pc.is_in(table[schema.KEY], pa.array(sorted(self.dropped), pa.string())))
        return with_locations(table.filter(keep), self.locations)

    def rejects(self, rejects: pa.Table, index: pa.Table) -> pa.Table:
        """The part rejects plus one row per dropped segment (from its index row)."""
        if not self.dropped:
            return rejects
        rows = index.filter(pc.is_in(index[schema.KEY], pa.array(sorted(self.dropped), pa.string())))
        decisions = [self.dropped[k] for k in rows[schema.KEY].to_pylist()]
        rows = with_locations(rows, self.locations)
        for name, values in ((schema.REJECT_STAGE, [schema.StageName.DEDUP.value] * len(decisions)),
                             (schema.REJECT_REASON, [d.reason for d in decisions]),
                             (schema.REJECT_DETAIL, [d.detail for d in decisions]),
                             (schema.DUPLICATE_OF, [d.duplicate_of for d in decisions])):
            rows = rows.append_column(name, pa.array(values, pa.string()))
        merged = pa.concat_tables([rejects, conform(rows, schema.REJECT_SCHEMA)], promote_options="permissive")
        return merged.sort_by([(schema.SOURCE_URI, "ascending"), (schema.KEY, "ascending")])

    def stats(self, stats: PartStats, index: pa.Table) -> PartStats:
        """The part's stats with dropped segments moved to rejects (sources and seconds too)."""
        out = stats
        if self.dropped:
            dropped = pc.is_in(index[schema.KEY], pa.array(sorted(self.dropped), pa.string()))
            before = set(index[schema.SOURCE_ID].to_pylist())
            after = set(index.filter(pc.invert(dropped))[schema.SOURCE_ID].to_pylist())
            reasons = Counter(out.rejects_by_reason) + Counter(d.reason for d in self.dropped.values())
            out = dataclasses.replace(
                out, segments=out.segments - len(self.dropped),
                seconds_out=out.seconds_out - (pc.sum(index.filter(dropped)[schema.AUDIO_DURATION_S]).as_py() or 0.0),
                kept_sources=out.kept_sources - len(before - after),
                rejected_sources=out.rejected_sources + len(before - after),
                rejects_by_reason=dict(sorted(reasons.items())))
        shards = tuple(self.shard_summaries.get(s.name, s) for s in out.shards if s.name not in self.removed_shards)
        return dataclasses.replace(out, shards=shards, held_shards=out.held_shards + tuple(self.held_summaries))


def dup_companion(shard: str) -> str:
    return DUP_PREFIX + shard.split("-", 1)[1]


def repack_part(root: str, index: pa.Table, dropped: dict[str, Decision], held_names: set[str]) -> PartPatch:
    """Move the dropped segments of one part (index = its writer index) into held-dup tars."""
    patch = PartPatch(dropped=dropped)
    for shard in sorted(set(index[schema.SHARD].to_pylist())):
        rows = index.filter(pc.equal(index[schema.SHARD], shard))
        keys = rows[schema.KEY].to_pylist()
        durations = dict(zip(keys, rows[schema.AUDIO_DURATION_S].to_pylist()))
        drop = sorted(k for k in keys if k in dropped)
        companion = dup_companion(shard)
        if not drop and companion not in held_names:
            continue
        keep = sorted(set(keys) - set(drop))
        # a kept shard whose segments all went was deleted; the held-dup tar holds them
        done = rewrite_tars(root, {shard: keep, companion: drop}, durations)
        patch.locations.update(done.locations)
        if shard in done.written:
            patch.shard_summaries[shard] = done.written[shard]
        else:
            patch.removed_shards.add(shard)
        if companion in done.written:
            patch.held_summaries.append(done.written[companion])
    return patch
