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

from audiomill import layout, schema
from audiomill.formats.shards import rewrite_tars, with_locations
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
        return with_locations(table, self.locations)

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
    names = {prefix + pair: sorted(k for k, p in wanted.items() if p == prefix) for prefix in (KEPT_PREFIX, HELD_PREFIX)}
    done = rewrite_tars(root, names, durations)
    result.written.update(done.written)
    result.removed.update(done.removed)
    result.locations.update(done.locations)
