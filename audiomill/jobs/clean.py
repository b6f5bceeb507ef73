"""``audiomill clean`` as a function, one straight line:

prepare (models, policy, fingerprint) -> plan parts -> run the parts that are not done ->
finalize (decide duplicates, repack held audio, merge tables, manifest).
"""

from __future__ import annotations

import json
import logging
import time

from audiomill import layout, schema, storage
from audiomill.config import CleanConfig
from audiomill.execution.runners import LocalRunner, make_runner
from audiomill.jobs.finalize import finalize_dataset
from audiomill.jobs.lock import output_lock
from audiomill.jobs.output import claim_output
from audiomill.jobs.plan import Plan, plan_parts
from audiomill.jobs.prepare import PreparedJob, prepare_job
from audiomill.manifest import Manifest, PartStats
from audiomill.pipelines.writer import STATS_JSON

logger = logging.getLogger(__name__)


class JobProgress:
    """Receives progress events; the CLI renders them, tests and scripts may ignore them."""

    def planned(self, plan: Plan) -> None: ...

    def part_done(self, stats: PartStats) -> None: ...


def plan_job(prepared: PreparedJob, write: bool = True) -> Plan:
    """List the job's inputs into parts and read existing done markers (``write=False``: dry run)."""
    cfg = prepared.cfg
    return plan_parts(cfg.inputs, cfg.ingest, cfg.output, prepared.fingerprint, write=write)


def run_clean(job: CleanConfig | PreparedJob, progress: JobProgress | None = None) -> Manifest:
    """Run a clean job to completion and return its manifest (also written to the output)."""
    prepared = job if isinstance(job, PreparedJob) else prepare_job(job)
    cfg = prepared.cfg
    progress = progress or JobProgress()
    started = time.time()
    with output_lock(cfg.output) as lock:  # a second run on this output refuses here, naming us
        claim_output(cfg, prepared.overwrite)
        plan = plan_job(prepared)
        progress.planned(plan)
        logger.info("%d parts, %d to run", len(plan.parts), len(plan.todo))
        stats_by_part = {p.part_id: p.done_stats for p in plan.parts if p.done_stats is not None}
        stages = prepared.stages()
        gpus = any(stage.resources.num_gpus for stage in stages)
        with make_runner(cfg.runner, cfg.dedup.ray_min_segments, len(plan.parts), gpus) as runner:
            for batch in runner.run([p.uri for p in plan.run_order], stages):
                for part_id, text in zip(batch[schema.PART_ID].to_pylist(), batch[STATS_JSON].to_pylist()):
                    stats = PartStats.from_dict(json.loads(text))
                    stats_by_part[part_id] = stats
                    progress.part_done(stats)
                lock.check()
            missing = [p.part_id for p in plan.parts if p.part_id not in stats_by_part]
            if missing:
                raise RuntimeError(f"parts never finished: {missing[:10]}")
            manifest = finalize_dataset(prepared, plan, stats_by_part, started, runner)
            if cfg.tokenize.enabled:
                # in process with the local runner, else on Ray Data (as `audiomill tokenize` runs)
                manifest = tokenize_kept(prepared, manifest, local=isinstance(runner, LocalRunner))
            return manifest


def tokenize_kept(prepared: PreparedJob, manifest: Manifest, local: bool) -> Manifest:
    """``tokenize.enabled``: token tables of the kept segments (after dedup and policy, so no
    dropped copy is tokenized), by the same stage and resumable parts as ``audiomill tokenize``;
    the manifest records what was written."""
    from audiomill.execution.ray_session import RaySettings
    from audiomill.jobs.tokenize import TokenizeRequest, tokenize_dataset

    cfg = prepared.cfg
    workers = 0 if local else max(1, (cfg.runner.num_cpus or 2) // cfg.tokenize.threads)
    result = tokenize_dataset(TokenizeRequest(cfg.output, cfg.tokenize, cfg.models.registry, workers,
                                              RaySettings(address=cfg.runner.address, num_cpus=cfg.runner.num_cpus)))
    manifest = manifest.replace(extra={**manifest.extra, "tokens": {
        "model": result.model_id, "dir": storage.redact(result.output), "segments": result.segments,
        "tokens": result.tokens, "skipped": dict(sorted(result.skipped.items())),
        "parts_written": result.parts_written, "parts_skipped": result.parts_skipped}})
    storage.write_text(storage.join(cfg.output, layout.MANIFEST_FILE), manifest.to_json())
    return manifest
