"""Keep ``shards/`` exactly the index: move a segment's audio between its kept shard and its held
companion when a decision about it changes (``audiomill curate``).

A kept segment lives in ``shard-P-N.tar``; a policy-rejected one with held audio in its companion
``held-P-N.tar`` (same ``P-N``). Each pair a decision touches is rebuilt from the union of both
tars, keys sorted, so anyone reading ``shards/*.tar`` the usual WebDataset way gets exactly the
index's segments, and moving a segment back later loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from audiomill import layout, schema, storage
from audiomill.formats.shards import read_members, summarize, write_members
from audiomill.manifest import ShardSummary

KEPT_PREFIX = "shard-"
HELD_PREFIX = layout.HELD_PREFIX + "-"


def _pair(name: str) -> str | None:
    """The ``P-N`` a shard or policy-held tar belongs to (None for other held tars, e.g. held-dup)."""
    for prefix in (KEPT_PREFIX, HELD_PREFIX):
        rest = name[len(prefix):] if name.startswith(prefix) else None
        if rest is not None and rest[:1].isdigit():
            return rest
    return None


@dataclass
class Relocation:
    """New locations of moved segments and the new summaries of rebuilt tars."""

    locations: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # key -> tar, offset, bytes
    written: dict[str, ShardSummary] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    parts: set[int] = field(default_factory=set)  # parts whose tars were rebuilt

    def apply(self, table: pa.Table) -> pa.Table:
        """``table`` with shard/tar_offset/flac_bytes of moved rows updated."""
        if not self.locations or table.num_rows == 0:
            return table
        keys = table[schema.KEY].to_pylist()
        for position, name in enumerate((schema.SHARD, schema.TAR_OFFSET, schema.FLAC_BYTES)):
            old = table[name].to_pylist()
            new = [self.locations[k][position] if k in self.locations else v for k, v in zip(keys, old)]
            table = table.set_column(table.column_names.index(name), name, pa.array(new, table.schema.field(name).type))
        return table

    def summaries(self, before: tuple[ShardSummary, ...], prefix: str) -> tuple[ShardSummary, ...]:
        """Manifest summaries: rebuilt tars replaced in place, emptied ones dropped, new ones (named
        ``prefix*``) appended in name order."""
        listed = {s.name for s in before}
        out = [self.written.get(s.name, s) for s in before if s.name not in self.removed]
        out += [self.written[n] for n in sorted(self.written) if n.startswith(prefix) and n not in listed]
        return tuple(out)


def relocate(root: str, kept: pa.Table, held: pa.Table) -> Relocation:
    """Rebuild every shard/held pair where a ``kept`` row sits in a held tar or a ``held`` row in a
    kept shard. Rows need ``key``, ``shard`` and ``audio_duration_s``."""
    want: dict[str, tuple[str, str]] = {}  # key -> (pair, KEPT/HELD prefix)
    affected: set[str] = set()
    durations: dict[str, float] = {}
    for table, prefix in ((kept, KEPT_PREFIX), (held, HELD_PREFIX)):
        for key, shard, seconds in zip(table[schema.KEY].to_pylist(), table[schema.SHARD].to_pylist(),
                                       table[schema.AUDIO_DURATION_S].to_pylist()):
            pair = _pair(shard) if shard else None
            if pair is None:
                continue
            want[key] = (pair, prefix)
            durations[key] = seconds
            if not shard.startswith(prefix):
                affected.add(pair)
    result = Relocation()
    for pair in sorted(affected):
        result.parts.add(int(pair.split("-", 1)[0]))
        _rebuild(root, pair, {k: p for k, (q, p) in want.items() if q == pair}, durations, result)
    return result


def _rebuild(root: str, pair: str, wanted: dict[str, str], durations: dict[str, float], result: Relocation) -> None:
    members = {}
    for prefix in (KEPT_PREFIX, HELD_PREFIX):
        uri = layout.shard_uri(root, prefix + pair)
        if storage.exists(uri):
            members.update(read_members(uri))
    for prefix in (KEPT_PREFIX, HELD_PREFIX):
        name = prefix + pair
        keys = sorted(k for k, p in wanted.items() if p == prefix)
        if keys:
            data, offsets = write_members(members, keys, name)
            storage.write_bytes(layout.shard_uri(root, name), data)
            result.written[name] = summarize(name, data, keys, durations)
            result.locations.update({k: (name, *offsets[k]) for k in keys})
        else:
            result.removed.add(name)
            storage.delete(layout.shard_uri(root, name))
