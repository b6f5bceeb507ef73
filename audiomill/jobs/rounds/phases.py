"""The phases of one round, in order; each writes its table(s) and returns its marker summary.

annotate -> select -> resynthesize -> verify -> accept -> train -> evaluate -> register.
A phase reads only what earlier phases wrote (never in-memory state), so any phase can be the
first one a resumed round runs.
"""

from __future__ import annotations

import collections
import os
import tempfile
from dataclasses import asdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audiomill import schema, storage
from audiomill.annotation import CLASSES
from audiomill.jobs.rounds import generator
from audiomill.jobs.rounds import train as training
from audiomill.jobs.rounds.context import RoundContext
from audiomill.jobs.rounds.models import beats_parent, register_once
from audiomill.jobs.rounds.seedset import seed_tables
from audiomill.jobs.rounds.tasks import AnnotateTask, ResynthesizeTask, VerifyTask
from audiomill.models.understanding.heads import LEARNED_FIELDS, AttributeHeads
from audiomill.rounds import select as selection
from audiomill.rounds import store as files
from audiomill.rounds.segments import kept_segments
from audiomill.rounds.worker import FEATURES, RESYNTH_FLAC

Summary = dict[str, Any]
SELECT_REASON, SELECT_RANK = "select_reason", "select_rank"


def annotate(ctx: RoundContext) -> Summary:
    refs = [asdict(r) for r in kept_segments(ctx.dataset)]
    rows = [{schema.KEY: r["key"], schema.SHARD: r["shard"], schema.TAR_OFFSET: r["tar_offset"],
             schema.FLAC_BYTES: r["flac_bytes"], schema.AUDIO_DURATION_S: r["duration_s"]} for r in refs]
    out = ctx.map(rows, AnnotateTask(ctx.dataset))
    durations = {r["key"]: r["duration_s"] for r in refs}
    for row in out:
        row[schema.AUDIO_DURATION_S] = durations[row[schema.KEY]]
    ctx.store.write_table(files.ANNOTATIONS, pa.Table.from_pylist(out))
    return {"clips": len(out), "hours": sum(durations.values()) / 3600}


def select(ctx: RoundContext) -> Summary:
    table = ctx.store.read_table(files.ANNOTATIONS)
    conf_columns = [schema.conf_column(f) for f in schema.ANNOTATION_FIELDS]
    rows = table.select([schema.KEY, schema.AUDIO_DURATION_S, *conf_columns]).to_pylist()
    verified: set[str] = set()
    if not ctx.cfg.reverify_accepted:  # the budget goes to clips no earlier round accepted
        for earlier in files.accepted_so_far(ctx.dataset, ctx.number - 1, [schema.KEY]):
            verified.update(earlier.column(schema.KEY).to_pylist())
    candidates = [selection.Candidate(r[schema.KEY], r[schema.AUDIO_DURATION_S], min(r[c] for c in conf_columns))
                  for r in rows if r[schema.KEY] not in verified]
    chosen = selection.select(candidates, ctx.cfg.budget_hours * 3600, ctx.cfg.random_share,
                              seed=ctx.cfg.seed * 1000 + ctx.number)
    ctx.store.write_table(files.SELECTION, pa.Table.from_pylist(
        [{schema.KEY: c.key, schema.AUDIO_DURATION_S: c.duration_s, "min_conf": c.min_conf,
          SELECT_REASON: c.reason, SELECT_RANK: c.rank} for c in chosen],
        schema=pa.schema([(schema.KEY, pa.string()), (schema.AUDIO_DURATION_S, pa.float64()),
                          ("min_conf", pa.float64()), (SELECT_REASON, pa.string()), (SELECT_RANK, pa.int64())])))
    counts = collections.Counter(c.reason for c in chosen)
    return {"selected": len(chosen), "hours": sum(c.duration_s for c in chosen) / 3600,
            "already_accepted": len(rows) - len(candidates), **counts}


def _selected_annotations(ctx: RoundContext) -> pa.Table:
    keys = ctx.store.read_table(files.SELECTION).column(schema.KEY)
    table = ctx.store.read_table(files.ANNOTATIONS)
    return table.filter(pc.is_in(table.column(schema.KEY), value_set=keys)).drop_columns([FEATURES])


def resynthesize(ctx: RoundContext) -> Summary:
    out = ctx.map(_selected_annotations(ctx).to_pylist(), ResynthesizeTask())
    ctx.store.write_table(files.RESYNTH, pa.Table.from_pylist(
        out, schema=pa.schema([(schema.KEY, pa.string()), (RESYNTH_FLAC, pa.binary()),
                               (schema.VER_GENERATOR, pa.string())])))
    return {"clips": len(out), "failed": sum(r[RESYNTH_FLAC] is None for r in out)}


def verify(ctx: RoundContext) -> Summary:
    labels = _selected_annotations(ctx)
    synth = {r[schema.KEY]: r for r in ctx.store.read_table(files.RESYNTH).to_pylist()}
    refs = {r.key: r for r in kept_segments(ctx.dataset)}
    rows = []
    for row in labels.to_pylist():
        ref = refs[row[schema.KEY]]
        rows.append({**row, schema.SHARD: ref.shard, schema.TAR_OFFSET: ref.tar_offset,
                     schema.FLAC_BYTES: ref.flac_bytes, RESYNTH_FLAC: synth[row[schema.KEY]][RESYNTH_FLAC]})
    out = ctx.map(rows, VerifyTask(ctx.dataset, ctx.cfg.thresholds))
    for row in out:
        row[schema.ROUND] = ctx.number
        row[schema.VER_GENERATOR] = synth[row[schema.KEY]][schema.VER_GENERATOR]
    ctx.store.write_table(files.VERIFY, pa.Table.from_pylist(out))
    accepted = sum(r[schema.VER_DECISION] == "accept" for r in out)
    return {"verified": len(out), "accepted": accepted, "acceptance_rate": accepted / max(len(out), 1)}


def accept(ctx: RoundContext) -> Summary:
    verdicts = ctx.store.read_table(files.VERIFY)
    selected = {r[schema.KEY]: r[SELECT_REASON] for r in ctx.store.read_table(files.SELECTION).to_pylist()}
    keys = [r[schema.KEY] for r in verdicts.to_pylist() if r[schema.VER_DECISION] == "accept"]
    table = ctx.store.read_table(files.ANNOTATIONS)
    ctx.store.write_table(files.ACCEPTED, table.filter(pc.is_in(table.column(schema.KEY), value_set=pa.array(keys, pa.string()))))
    reasons = collections.Counter(code for r in verdicts.to_pylist() for code in r[schema.VER_REASONS].split(",") if code)
    random_rows = [r for r in verdicts.to_pylist() if selected.get(r[schema.KEY]) == selection.RANDOM]
    random_rate = (sum(r[schema.VER_DECISION] == "accept" for r in random_rows) / len(random_rows)
                   if random_rows else None)
    return {"accepted": len(keys), "verified": verdicts.num_rows, "reasons": dict(sorted(reasons.items())),
            "random_slice_acceptance": random_rate}


def _training_table(ctx: RoundContext, seed_train: pa.Table) -> pa.Table:
    """Seed clips (known answers) + every clip accepted by this and earlier rounds (latest wins)."""
    columns = [schema.KEY, FEATURES, *LEARNED_FIELDS]
    parts = [seed_train.select(columns)]
    if not ctx.bootstrap:
        parts += files.accepted_so_far(ctx.dataset, ctx.number, columns)
    return pa.concat_tables([p.cast(parts[0].schema) for p in parts]).sort_by(schema.KEY)


def train(ctx: RoundContext) -> Summary:
    """The next attribute heads, then (with a tokenizer) the next token generator: one Ray Train run."""
    seed_train, _ = seed_tables(ctx.dataset, ctx.cfg, ctx.spec(), ctx.ray)
    table = _training_table(ctx, seed_train)
    ctx.store.write_table("train.parquet", table)
    data_uri = storage.local_path(ctx.store.uri("train.parquet"))
    if data_uri is None:
        raise ValueError("rounds train from a local dataset directory (s3:// datasets are not supported yet)")
    jobs = [training.heads_job(data_uri, ctx.store.uri(files.MODEL_DIR), ctx.cfg.train)]
    gen_job, generated = generator.train_job(ctx, seed_train)
    jobs += [gen_job] if gen_job else []
    with tempfile.TemporaryDirectory(prefix="round-train-") as scratch:
        metrics = training.fit_jobs(jobs, name=f"train-round-{ctx.number:03d}", storage_dir=os.path.join(scratch, "ray"),
                                    ray_settings=ctx.ray)
    if gen_job:
        generated["train_metrics"] = metrics["generator"]
    return {"rows": table.num_rows, "label_digest": training.label_digest(table), "train_metrics": metrics["heads"],
            "generator": generated}


def evaluate(ctx: RoundContext) -> Summary:
    _, held_out = seed_tables(ctx.dataset, ctx.cfg, ctx.spec(), ctx.ray)
    candidate = AttributeHeads.load(ctx.store.uri(files.MODEL_DIR))
    parent = AttributeHeads.load(ctx.pinned.heads_parent_dir) if ctx.pinned.heads_parent_dir else None
    x, _ = training.arrays(held_out)
    rows = held_out.select([schema.KEY, "origin", *LEARNED_FIELDS]).to_pylist()
    for who, heads in (("candidate", candidate), ("parent", parent)):
        if heads is None:
            continue
        probs = heads.predict(x)
        for field in LEARNED_FIELDS:
            classes = CLASSES[field]
            for row, p in zip(rows, probs[field]):
                row[f"{who}_{field}"] = classes[int(p.argmax())]
    agreements, generated = generator.evaluate(ctx, held_out)
    for row in rows:
        row.update(agreements.get(row[schema.KEY], {}))
    ctx.store.write_table(files.EVAL, pa.Table.from_pylist(rows))
    return {"candidate": training.evaluate(candidate, held_out), "parent": training.evaluate(parent, held_out),
            "generator": generated}


def register(ctx: RoundContext) -> Summary:
    trained, scored = ctx.store.marker("train"), ctx.store.marker("evaluate")
    cand, parent = scored["candidate"]["mean"], scored["parent"]["mean"]
    local = storage.local_path(ctx.store.uri(files.MODEL_DIR))
    metrics = {"eval_mean_acc": cand, "eval_real_acc": scored["candidate"].get("real_mean", float("nan")),
               "parent_eval_mean_acc": parent}
    version = register_once(ctx.registry, ctx.cfg.heads_model, local, parent=ctx.pinned.heads_parent,
                            training_data=f"labels:sha256:{trained['label_digest']}", round=ctx.number,
                            description=f"attribute heads trained by round {ctx.number}",
                            metrics={k: float(v) for k, v in metrics.items()})
    better = ctx.pinned.heads_parent is None or beats_parent(cand, parent)
    if better:
        ctx.registry.promote(ctx.cfg.heads_model, version.version, "production")
    return {"version": version.ref, "parent": ctx.pinned.heads_parent, "promoted": bool(better),
            "candidate_eval_acc": cand, "parent_eval_acc": parent, "generator": generator.register(ctx)}


PHASE_FUNCTIONS = {"annotate": annotate, "select": select, "resynthesize": resynthesize, "verify": verify,
                   "accept": accept, "train": train, "evaluate": evaluate, "register": register}
BOOTSTRAP_SKIPS = ("annotate", "select", "resynthesize", "verify", "accept")
