"""A whole tiny round through real Ray (Ray Data actors, Ray Train with 2 workers), the registry,
Whisper tiny.en, the Resemblyzer encoder and espeak-ng/Piper: killed mid-round it resumes at its
phase, and the same round run in one go on a copy (clips mapped in process) writes byte-identical
tables. (Round 0's own rerun determinism is not repeated here: its seed set and heads are the
copy's inputs, unchanged.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from audiomill import schema
from audiomill.cli import round as round_cli
from audiomill.cli.app import app
from audiomill.execution.ray_session import RaySettings, ray_session
from audiomill.jobs.rounds.report import round_report, round_status
from audiomill.jobs.rounds.run import run_rounds
from audiomill.models.registry import ModelRegistry
from audiomill.rounds import seed
from audiomill.rounds.config import RoundConfig
from audiomill.rounds.store import PHASES
from audiomill.testing.rounds import make_round_dataset
from audiomill.testing.tokenizers import codebook_tokenizer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # ~4 Ray Train runs; slow on a loaded machine


def _config(registry: Path, tokenizer: Path, runner: str = "ray") -> RoundConfig:
    return RoundConfig(registry=str(registry), seed_clips=8, eval_clips=2, num_cpus=2, budget_hours=1.0,
                       batch_size=4, train={"epochs": 60}, runner=runner, tokenizer=str(tokenizer),
                       generator={"steps": 40, "hidden": 32, "batch_size": 8, "warmup_steps": 10})


def _tables(dataset: Path) -> dict[str, bytes]:
    labels = dataset / "labels"
    found = {str(p.relative_to(labels)): p.read_bytes() for p in labels.rglob("*")
             if p.is_file() and (p.suffix in (".parquet", ".bin") or p.name in ("heads.json", "generator.json"))}
    assert found
    return found


@pytest.fixture
def one_ray():
    """One embedded Ray for the three ``run_rounds`` calls (each would start and stop its own)."""
    with ray_session(RaySettings(num_cpus=2)):
        yield


def test_round_resumes_at_its_phase_and_reruns_byte_identical(tmp_path, one_ray):
    clean, _ = make_round_dataset(tmp_path / "a", 4, real=False)
    tokenizer = codebook_tokenizer(tmp_path / "tokenizer", [c.audio for c in seed.generated_set(6, 99)], 16)
    shards_before = {p.name: p.read_bytes() for p in (clean / "shards").glob("*.tar")}

    killed = run_rounds(str(clean), _config(tmp_path / "reg-a", tokenizer), 1, stop_after="verify")
    assert [o.number for o in killed] == [0, 1]  # bootstrap round 0, then round 1 killed after verify
    status = {s.number: s for s in round_status(str(clean))}
    assert status[0].next_phase is None and status[1].next_phase == "accept"
    verify = pq.read_table(clean / "labels" / "round-001" / "verify.parquet")
    assert set(verify.column(schema.VER_DECISION).to_pylist()) <= {"accept", "reject"}
    assert verify.num_rows == 4
    # the rerun: a copy holding round 0 only (dataset and registry as they were), so round 1 runs
    # from scratch there while the original resumes it from "accept"
    copy = tmp_path / "b" / "dataset"
    shutil.copytree(clean, copy, ignore=shutil.ignore_patterns("round-001"))
    shutil.copytree(tmp_path / "reg-a", tmp_path / "reg-b")

    resumed = run_rounds(str(clean), _config(tmp_path / "reg-a", tokenizer), 1)
    assert [o.number for o in resumed] == [1]
    assert resumed[0].ran == PHASES[PHASES.index("accept"):]
    registry = ModelRegistry(str(tmp_path / "reg-a"))
    versions = registry.versions("understanding-heads")
    assert [v.round for v in versions] == [0, 1] and versions[1].parent == 1
    assert versions[1].training_data.startswith("labels:sha256:")
    assert {"eval_mean_acc", "parent_eval_mean_acc"} <= set(versions[1].metrics)
    # the token generator trains beside the heads, on the seed set + accepted labels with tokens
    generators = registry.versions("generation-tokens")
    assert [v.round for v in generators] == [0, 1] and generators[1].parent == 1
    assert generators[1].training_data.startswith("labels:sha256:")
    assert 0 <= generators[1].metrics["eval_agreement"] <= 1
    round_one = clean / "labels" / "round-001"
    trained_on = pq.read_table(round_one / "generator_train.parquet")
    accepted = set(pq.read_table(round_one / "accepted.parquet").column(schema.KEY).to_pylist())
    assert set(trained_on.column(schema.KEY).to_pylist()) == accepted | {f"seed-0-{i:05d}" for i in range(8)}
    assert all(trained_on.column(schema.TOK_TOKENS).to_pylist())
    held_out = pq.read_table(round_one / "eval.parquet").to_pylist()
    assert all(0 <= r["candidate_gen_agreement"] <= 1 and 0 <= r["parent_gen_agreement"] <= 1 for r in held_out)

    # the one-go run maps its clips in process (Ray Train still trains): killed + resumed on Ray
    # Data == run in one go without it, byte for byte
    fresh = run_rounds(str(copy), _config(tmp_path / "reg-b", tokenizer, runner="local"), 1)
    assert [o.number for o in fresh] == [1] and fresh[0].ran == PHASES  # round 1 whole, not resumed
    assert _tables(copy) == _tables(clean)
    assert {p.name: p.read_bytes() for p in (clean / "shards").glob("*.tar")} == shards_before

    report = round_report(str(clean))[-1].to_json()
    assert report["phases"]["register"]["parent_eval_acc"] is not None
    result = CliRunner().invoke(round_cli.app, ["report", str(clean), "--json"])
    assert result.exit_code == 0, result.output
    assert '"register"' in result.output
    priced = CliRunner().invoke(app, ["plan", "--hours", "1000", "--budget-hours", "10", "--round-from",
                                      str(clean), "--json"])
    assert priced.exit_code == 0, priced.output
    plan = json.loads(priced.stdout)
    assert plan["based_on"]["rounds"] == [1] and plan["wall_hours"] > 0  # priced from the measured round 1
