"""The trainable generation model's part of a round: training table, Ray Train run, held-out score.

Training rows are the seed clips (known text and profile) plus every label accepted so far (the
understanding model's transcript and profile), each with the semantic tokens of its ORIGINAL
audio: the generator learns to say what verified labels describe the way the originals sound.
Text becomes espeak-ng phones on the driver, so the phone vocabulary is fixed before workers start.
Held-out score: agreement (1 - token edit distance) between the tokens generated from the TRUE
text + profile of each held-out clip and the tokens of that clip's audio.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from audiomill import schema, storage
from audiomill.execution.training import TrainScaling
from audiomill.jobs.rounds.context import RoundContext
from audiomill.jobs.rounds.models import beats_parent, register_once
from audiomill.jobs.rounds.tasks import ORIGIN, TRUTH_LANGUAGE, TRUTH_TRANSCRIPT
from audiomill.jobs.rounds.train import TrainJob
from audiomill.models.generation import token_model as tm
from audiomill.models.generation import token_training as tt
from audiomill.models.generation.voices import ESPEAK_LANGUAGES
from audiomill.models.tokenizer.espeak_align import phonemes
from audiomill.rounds import store as files
from audiomill.rounds.store import read_table

GEN_TRAIN = "generator_train.parquet"
GEN_DIR = "generator"  # the trained candidate generator, before registration
PHONES = "gen_phones"
NO_TOKENIZER = "no tokenizer: set the round's `tokenizer` to train the generation model"
Summary = dict[str, Any]


def enabled(ctx: RoundContext) -> str | None:
    """Why the generator is not trained this round (None: it is)."""
    if not ctx.cfg.generator.enabled:
        return "generator.enabled is false"
    return None if ctx.pinned.tokenizer else NO_TOKENIZER


def phone_sequence(text: str | None, language: str | None) -> list[str] | None:
    """The generator's input phones of ``text``, or None when there is nothing espeak-ng can read."""
    if not (text or "").strip():
        return None
    try:
        words = phonemes(text, ESPEAK_LANGUAGES.get(language or "en", language or "en"))
    except ValueError:  # espeak-ng has no voice for the language
        return None
    return tm.phone_sequence(words) if words else None


def _rows(table: pa.Table, text_column: str, language_column: str) -> tuple[list[dict], int]:
    """Generator rows (key, phones, profile, tokens) and how many rows had no usable text/tokens."""
    out, skipped = [], 0
    for row in table.to_pylist():
        phones = phone_sequence(row.get(text_column), row.get(language_column))
        if phones is None or not row.get(schema.TOK_TOKENS):
            skipped += 1
            continue
        out.append({schema.KEY: row[schema.KEY], PHONES: phones, schema.TOK_TOKENS: row[schema.TOK_TOKENS],
                    **{f: row.get(f) for f in tm.PROFILE_FIELDS}})
    return out, skipped


def training_table(ctx: RoundContext, seed_train: pa.Table) -> tuple[pa.Table, int]:
    rows, skipped = _rows(seed_train, TRUTH_TRANSCRIPT, TRUTH_LANGUAGE)
    if not ctx.bootstrap:
        columns = [schema.KEY, schema.ANN_TRANSCRIPT, schema.ANN_LANGUAGE, schema.TOK_TOKENS, *tm.PROFILE_FIELDS]
        for accepted in files.accepted_so_far(ctx.dataset, ctx.number, columns):
            more, missed = _rows(accepted, schema.ANN_TRANSCRIPT, schema.ANN_LANGUAGE)
            rows += more
            skipped += missed
    rows.sort(key=lambda r: r[schema.KEY])
    table = pa.Table.from_pylist(rows, schema=pa.schema(
        [(schema.KEY, pa.string()), (PHONES, pa.list_(pa.string())), (schema.TOK_TOKENS, pa.list_(pa.int32())),
         *[(f, pa.string()) for f in tm.PROFILE_FIELDS]]))
    return table, skipped


def digest(table: pa.Table) -> str:
    """sha256 of the generator's training data (keys, phones, profiles, tokens): its label-set id."""
    return hashlib.sha256(json.dumps(table.to_pylist(), sort_keys=True).encode()).hexdigest()


def _profiles(table: pa.Table) -> list[dict[str, str | None]]:
    return table.select(list(tm.PROFILE_FIELDS)).to_pylist()


def fit_generator(config: dict[str, Any], rank: int, world: int) -> tuple[dict[str, Any], Callable[[str], None]]:
    """Runs on each Ray Train worker (``train.jobs_train_loop``): rows ``rank::world``, gradients
    averaged under DDP."""
    import torch
    from ray.train.torch import prepare_model

    torch.set_num_threads(1)
    table = read_table(config["data"])
    torch.manual_seed(config["seed"])
    shape = tm.GeneratorShape(tuple(config["phones"]), config["codebook_size"], hidden=config["hidden"])
    generator = tm.TokenGenerator(tm.TokenGeneratorNet(shape), config["tokenizer"])
    data = tt.examples(generator, table.column(PHONES).to_pylist(), _profiles(table),
                       table.column(schema.TOK_TOKENS).to_pylist())
    options = tt.FitOptions(steps=config["steps"], batch_size=config["batch_size"],
                            learning_rate=config["learning_rate"], warmup_steps=config["warmup_steps"],
                            seed=config["seed"] + rank)
    wrapped = prepare_model(generator.net, parallel_strategy="ddp" if world > 1 else None)
    losses = tt.fit(wrapped, generator.net, data[rank::world] or data, options)
    return {**{f"loss_{k}": v for k, v in losses.items()}, "rows": len(data), "workers": world}, generator.save


def train_job(ctx: RoundContext, seed_train: pa.Table) -> tuple[TrainJob | None, Summary]:
    """The candidate generator's Ray Train job (into the round's ``generator/``) and the train
    marker's part; no job, and the reason, when it is not trained."""
    why = enabled(ctx)
    if why:
        return None, {"skipped": why}
    from audiomill.models.tokenizer import SemanticTokenizer

    table, skipped = training_table(ctx, seed_train)
    if table.num_rows == 0:
        return None, {"skipped": "no training rows with text and tokens", "rows_skipped": skipped}
    ctx.store.write_table(GEN_TRAIN, table)
    tokenizer = SemanticTokenizer.load(ctx.pinned.tokenizer, ctx.cfg.registry)
    g = ctx.cfg.generator
    config = {"data": storage.local_path(ctx.store.uri(GEN_TRAIN)), "seed": g.seed, "hidden": g.hidden,
              "phones": list(tt.vocabulary(table.column(PHONES).to_pylist())), "steps": g.steps,
              "codebook_size": tokenizer.codebook_size, "tokenizer": tokenizer.version,
              "batch_size": g.batch_size, "learning_rate": g.learning_rate, "warmup_steps": g.warmup_steps}
    job = TrainJob("generator", fit_generator, config, ctx.store.uri(GEN_DIR),
                   TrainScaling(num_workers=g.num_workers, use_gpu=g.use_gpu))
    return job, {"rows": table.num_rows, "rows_skipped": skipped, "label_digest": digest(table)}


def _load(directory: str | None, tokenizer: str) -> tm.TokenGenerator | None:
    """A generator that speaks ``tokenizer``'s tokens, or None (none there, or another tokenizer's)."""
    if not directory:
        return None
    generator = tm.TokenGenerator.load(directory)
    return generator if generator.tokenizer == tokenizer else None


def evaluate(ctx: RoundContext, held_out: pa.Table) -> tuple[dict[str, dict[str, float]], Summary]:
    """Per held-out key ``{candidate_gen_agreement, parent_gen_agreement}``, and the summary."""
    why = enabled(ctx)
    if why or not storage.exists(storage.join(ctx.store.uri(GEN_DIR), tm.GENERATOR_JSON)):
        return {}, {"skipped": why or "no candidate generator was trained"}
    candidate = tm.TokenGenerator.load(storage.local_path(ctx.store.uri(GEN_DIR)))
    parent = _load(ctx.pinned.generator_parent_dir, candidate.tokenizer)
    rows, _ = _rows(held_out, TRUTH_TRANSCRIPT, TRUTH_LANGUAGE)
    origin = dict(zip(held_out.column(schema.KEY).to_pylist(), held_out.column(ORIGIN).to_pylist()))
    scores: dict[str, dict[str, float]] = {r[schema.KEY]: {} for r in rows}
    summary: Summary = {"clips": len(rows)}
    for who, generator in (("candidate", candidate), ("parent", parent)):
        if generator is None or not rows:
            summary[who] = {"mean": float("nan"), "real_mean": float("nan")}
            continue
        made = generator.generate([r[PHONES] for r in rows], [{f: r[f] for f in tm.PROFILE_FIELDS} for r in rows])
        values = [tt.agreement(m, np.asarray(r[schema.TOK_TOKENS])) for m, r in zip(made, rows)]
        real = [v for v, r in zip(values, rows) if origin[r[schema.KEY]] == "real"]
        for r, v in zip(rows, values):
            scores[r[schema.KEY]][f"{who}_gen_agreement"] = v
        summary[who] = {"mean": float(np.mean(values)), "real_mean": float(np.mean(real)) if real else float("nan")}
    return scores, summary


def register(ctx: RoundContext) -> Summary:
    trained = (ctx.store.marker("train") or {}).get("generator", {})
    scored = (ctx.store.marker("evaluate") or {}).get("generator", {})
    if "skipped" in trained or "skipped" in scored or not trained or not scored:
        return {"skipped": trained.get("skipped") or scored.get("skipped") or "no generator was trained this round"}
    cand, parent = scored["candidate"]["mean"], scored["parent"]["mean"]
    metrics = {"eval_agreement": cand, "eval_real_agreement": scored["candidate"]["real_mean"],
               "parent_eval_agreement": parent}
    version = register_once(ctx.registry, ctx.cfg.generator.model, storage.local_path(ctx.store.uri(GEN_DIR)),
                            parent=ctx.pinned.generator_parent, round=ctx.number,
                            training_data=f"labels:sha256:{trained['label_digest']}",
                            description=f"text + profile -> semantic tokens, trained by round {ctx.number}",
                            metrics={k: float(v) for k, v in metrics.items()})
    better = beats_parent(cand, parent)  # a parent of another tokenizer scores nan: not comparable
    if better:
        ctx.registry.promote(ctx.cfg.generator.model, version.version, "production")
    return {"version": version.ref, "parent": ctx.pinned.generator_parent, "promoted": bool(better),
            "candidate_eval_agreement": cand, "parent_eval_agreement": parent}
