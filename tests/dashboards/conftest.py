"""A dataset made by `audiomill clean` (local runner) on the demo corpus, shared by dashboard tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiomill.config import load_config
from audiomill.jobs.clean import run_clean


@pytest.fixture(scope="session")
def clean_dataset(demo_corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small parts so the dataset has several shards."""
    out = tmp_path_factory.mktemp("dashboard") / "dataset"
    cfg = load_config(inputs=[str(demo_corpus.root)], output=str(out),
                      overrides=["runner.kind=local", "ingest.part_size=6"])
    run_clean(cfg)
    return out


POLICY = {"name": "test-policy", "source": "test.yaml", "digest": "0" * 16, "rules": {
    "q_snr_db": {"min": 10.0}, "asr_avg_logprob": {"min": -1.0, "max": 0.0}}}
POLICY_REJECTED = 3  # kept segments the fixture moves to rejects as policy rejects
HELD_PREFIX = "held-curated-"  # unlike any held shard `clean` itself writes


@pytest.fixture(scope="session")
def curated_dataset(clean_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``clean_dataset`` as the curation and ASR stages leave it: q_*/asr_* columns, a
    policy and its report in the manifest, policy rejects whose audio sits in a held shard,
    dedup.parquet and two label rounds."""
    import json
    import shutil

    import numpy as np
    import polars as pl

    out = tmp_path_factory.mktemp("curated") / "dataset"
    shutil.copytree(clean_dataset, out, ignore=shutil.ignore_patterns("_parts"))
    index = pl.read_parquet(out / "index.parquet")
    ratio = index["vad_speech_ratio"].to_numpy()
    index = index.with_columns(
        pl.Series("q_snr_db", 40.0 * ratio - 12.0),
        pl.Series("asr_avg_logprob", -0.1 - 1.5 * (1.0 - ratio)),
        pl.col("source_uri").str.extract(r"/speech/([a-z]+)/").fill_null("und").alias("asr_language"),
        pl.format("transcript of {}", pl.col("key").str.slice(0, 6)).alias("asr_text"),
    )
    worst = index.sort("q_snr_db", "key").head(POLICY_REJECTED)
    (out / "held").mkdir(exist_ok=True)
    for shard in worst["shard"].unique():  # same tar bytes, so offsets stay valid
        shutil.copy(out / "shards" / shard, out / "held" / shard.replace("shard-", HELD_PREFIX, 1))
    moved = worst.with_columns(
        pl.col("shard").str.replace("^shard-", HELD_PREFIX),
        pl.lit("policy").alias("reject_stage"), pl.lit("policy").alias("reject_reason"),
        pl.format("q_snr_db={}<min 10", pl.col("q_snr_db").round(3)).alias("reject_detail"))
    index = index.filter(~pl.col("key").is_in(worst["key"]))
    rejects = pl.concat([pl.read_parquet(out / "rejects.parquet"), moved], how="diagonal_relaxed")
    index.write_parquet(out / "index.parquet")
    rejects.write_parquet(out / "rejects.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    hours = [float(index["audio_duration_s"].sum()) / 3600, float(moved["audio_duration_s"].sum()) / 3600]
    manifest |= {"policy": POLICY, "policy_report": {
        "segments": index.height + moved.height, "total_hours": sum(hours), "kept_segments": index.height,
        "kept_hours": hours[0], "rejected_segments": moved.height, "rejected_hours": hours[1],
        "rules": [{"metric": "q_snr_db", "min": 10.0, "max": None, "rejected_segments": moved.height,
                   "rejected_hours": hours[1], "only_segments": moved.height, "only_hours": hours[1]},
                  {"metric": "asr_avg_logprob", "min": -1.0, "max": 0.0, "rejected_segments": 0,
                   "rejected_hours": 0.0, "only_segments": 0, "only_hours": 0.0}]}}
    manifest["held_shards"] = (manifest.get("held_shards") or []) + [
        {"name": n.replace("shard-", HELD_PREFIX, 1)} for n in worst["shard"].unique().sort()]
    manifest["counts"]["segments"] = index.height
    manifest["hours_out"] = hours[0]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    keys = index["key"].to_list()
    pl.DataFrame({"key": keys, "cluster_id": [k[:1] for k in keys], "kept": [i % 4 != 0 for i in range(len(keys))],
                  "reason": ["unique" if i % 4 else "audio_near_dup" for i in range(len(keys))]}
                 ).write_parquet(out / "dedup.parquet")
    rng = np.random.default_rng(0)
    for number, share in ((1, 0.5), (2, 1.0)):
        labeled = keys[: int(len(keys) * share)]
        directory = out / "labels" / f"round-{number:03d}"
        directory.mkdir(parents=True)
        pl.DataFrame({"key": labeled, "agreement": rng.uniform(0.5, 1.0, len(labeled)),
                      "accepted": [i % 3 != 0 for i in range(len(labeled))]}).write_parquet(directory / "labels.parquet")
    _token_set(out, keys)
    return out


TOKEN_MODEL = "speech-tokens@2"
TOKEN_EVAL = {"model_id": TOKEN_MODEL, "rate": {"bitrate_bps": 250.0}, "usage": {"code_use": 0.97},
              "units": {"pnmi": 0.71, "mfcc_pnmi": 0.3}, "speed": {"encode_x_realtime": 210.0},
              "resynthesis": {"generated": {"wer_original": 0.4, "wer_vocoder": 0.45, "wer_resynth": 0.7,
                                            "speaker_similarity": 0.8}},
              "clips": [{"set": "generated", "name": "en-us:a", "wer_original": 0.4, "wer_vocoder": 0.45,
                         "wer_resynth": 0.7, "resynth_text": "a sentence"}]}


def _token_set(out: Path, keys: list[str]) -> None:
    """tokens/speech-tokens@2: every kept segment but each 5th (skipped ``too_short``), + eval.json."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from audiomill import schema

    skipped = [i % 5 == 0 for i in range(len(keys))]
    table = pa.Table.from_pydict({
        schema.KEY: keys,
        schema.TOK_TOKENS: [None if s else list(range(10 + i % 7)) for i, s in enumerate(skipped)],
        schema.TOK_NUM_TOKENS: [None if s else 10 + i % 7 for i, s in enumerate(skipped)],
        schema.TOK_FPS: [25.0] * len(keys), schema.TOK_MODEL: [TOKEN_MODEL] * len(keys),
        schema.TOK_SKIP_REASON: ["too_short" if s else None for s in skipped],
        schema.TOK_SKIP_DETAIL: ["under 0.5 s" if s else None for s in skipped]}, schema=schema.TOKEN_TABLE_SCHEMA)
    directory = out / "tokens" / TOKEN_MODEL
    directory.mkdir(parents=True)
    pq.write_table(table, directory / "part-000000.parquet")
    (directory / "eval.json").write_text(json.dumps(TOKEN_EVAL))
