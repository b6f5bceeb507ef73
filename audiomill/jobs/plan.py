"""Plan a clean job: list inputs into parts, write each part's source list, read done markers.

Resume works at part granularity: a part whose done marker matches both the config fingerprint
and the part's listing fingerprint is skipped; anything else is (re)written from scratch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pyarrow.compute as pc

from audiomill import ingest, layout, schema, storage
from audiomill.formats.tables import write_table
from audiomill.manifest import PartStats

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartPlan:
    part_id: int
    uri: str  # the part's sources.parquet
    fingerprint: str
    sources: int
    done_stats: PartStats | None  # stats from a valid done marker, None if the part must run
    source_bytes: int = 0  # the part's input bytes (sources of unknown size count 0)


@dataclass(frozen=True)
class Plan:
    parts: list[PartPlan]
    listing: ingest.ListingStats

    @property
    def sources(self) -> int:
        return sum(p.sources for p in self.parts)

    @property
    def todo(self) -> list[PartPlan]:
        return [p for p in self.parts if p.done_stats is None]

    @property
    def run_order(self) -> list[PartPlan]:
        """The parts to run, largest input first: a 2-hour file that started last would run alone
        at the end while every other worker idles (parts are independent, so order changes no byte)."""
        return sorted(self.todo, key=lambda p: (-p.source_bytes, p.part_id))

    @property
    def part_ids(self) -> list[int]:
        return [p.part_id for p in self.parts]


def plan_parts(inputs: list[str], ingest_cfg, output: str, fingerprint: str,  # noqa: ANN001
               write: bool = True) -> Plan:
    """List ``inputs`` into parts; with ``write`` store each part that must run's source list.

    A dry run passes ``write=False``: it lists and reads markers but writes nothing.
    """
    listing = ingest.ListingStats()
    parts = []
    for table in ingest.iter_parts(ingest.iter_sources(inputs, ingest_cfg, listing, output), ingest_cfg.part_size,
                                   ingest_cfg.part_target_bytes):
        part_id = table[schema.PART_ID][0].as_py()
        part_fingerprint = table[schema.PART_FINGERPRINT][0].as_py()
        uri = layout.part_file(output, part_id, "sources.parquet")
        done = read_marker(output, part_id, fingerprint, part_fingerprint)
        if done is None and write:
            write_table(uri, table, compression=None)
        size = pc.sum(pc.fill_null(table[schema.SOURCE_BYTES], 0)).as_py() or 0
        parts.append(PartPlan(part_id, uri, part_fingerprint, table.num_rows, done, size))
    return Plan(parts, listing)


def read_marker(output: str, part_id: int, config_fingerprint: str, part_fingerprint: str) -> PartStats | None:
    """The stats of a part's done marker if it matches both fingerprints, else None."""
    uri = layout.marker_uri(output, part_id)
    try:
        marker = json.loads(storage.read_text(uri))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        logger.warning("ignoring unreadable marker %s", storage.redact(uri))
        return None
    if marker.get("config_fingerprint") != config_fingerprint or marker.get("part_fingerprint") != part_fingerprint:
        return None
    return PartStats.from_dict(marker["stats"])
