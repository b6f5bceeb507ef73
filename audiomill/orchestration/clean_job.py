"""``audiomill clean`` as a function: plan parts, skip done ones, run the rest, finalize.

Resume works at part granularity: a part whose done marker matches both the config fingerprint
and the part's listing fingerprint is skipped; anything else is (re)written from scratch.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from audiomill import layout, schema, storage
from audiomill.config import CleanConfig
from audiomill.orchestration.finalize import finalize_dataset
from audiomill.orchestration.runners import make_runner
from audiomill.pipelines import ingest
from audiomill.pipelines.asr import pin_asr_model
from audiomill.pipelines.clean import clean_stages

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartPlan:
    part_id: int
    uri: str  # the part's sources.parquet
    fingerprint: str
    sources: int
    done_stats: dict[str, Any] | None  # stats from a valid done marker, None if the part must run


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


class JobProgress:
    """Receives progress events; the CLI renders them, tests and scripts may ignore them."""

    def planned(self, plan: Plan) -> None: ...

    def part_done(self, stats: dict[str, Any]) -> None: ...


def plan_job(cfg: CleanConfig) -> Plan:
    """List inputs into parts, write each part's source list, and read existing done markers."""
    ingest.check_inputs(cfg.inputs)
    ingest.check_output_not_inside_inputs(cfg.inputs, cfg.output)
    listing = ingest.ListingStats()
    parts = []
    config_fingerprint = cfg.fingerprint()
    sources = ingest.iter_sources(cfg.inputs, cfg.ingest, listing, output=cfg.output)
    for table in ingest.iter_parts(sources, cfg.ingest.part_size):
        part_id = table[schema.PART_ID][0].as_py()
        fingerprint = table[schema.PART_FINGERPRINT][0].as_py()
        uri = layout.part_file(cfg.output, part_id, "sources.parquet")
        done = _valid_marker(cfg.output, part_id, config_fingerprint, fingerprint)
        if done is None:
            buffer = io.BytesIO()
            pq.write_table(table, buffer)
            storage.write_bytes(uri, buffer.getvalue())
        parts.append(PartPlan(part_id, uri, fingerprint, table.num_rows, done))
    return Plan(parts, listing)


def _valid_marker(output: str, part_id: int, config_fingerprint: str, part_fingerprint: str
                  ) -> dict[str, Any] | None:
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
    return marker["stats"]


def run_clean(cfg: CleanConfig, progress: JobProgress | None = None) -> dict[str, Any]:
    """Run a clean job to completion and return its manifest (also written to the output)."""
    if not cfg.output:
        raise ValueError("output is required")
    progress = progress or JobProgress()
    started = time.time()
    cfg, models = pin_asr_model(cfg)  # before fingerprints: name@production -> name@<version>
    plan = plan_job(cfg)
    progress.planned(plan)
    logger.info("%d parts, %d to run", len(plan.parts), len(plan.todo))
    stats_by_part = {p.part_id: p.done_stats for p in plan.parts if p.done_stats is not None}
    runner = make_runner(cfg.runner)
    for batch in runner.run([p.uri for p in plan.todo], clean_stages(cfg, models)):
        for part_id, text in zip(batch[schema.PART_ID].to_pylist(), batch["stats_json"].to_pylist()):
            stats = json.loads(text)
            stats_by_part[part_id] = stats
            progress.part_done(stats)
    missing = [p.part_id for p in plan.parts if p.part_id not in stats_by_part]
    if missing:
        raise RuntimeError(f"parts never finished: {missing[:10]}")
    return finalize_dataset(cfg, plan, stats_by_part, time.time() - started,
                            resumed_parts=len(plan.parts) - len(plan.todo),
                            models={k: m.manifest_entry() for k, m in models.items()})
