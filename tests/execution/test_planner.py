"""Capacity plans follow from measured manifests: exact arithmetic on synthetic ones, CLI on a real one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audiomill.execution.planner import ClusterSpec, plan
from audiomill.manifest import Accounting, Counts, Manifest, ShardSummary


def _manifest(hours_in: float, stages: dict[str, float], asr_device: str = "cpu", gpus: float = 0.5) -> Manifest:
    return Manifest(
        created_unix=0.0, audiomill_version="0", versions={}, config_fingerprint="0", models={},
        counts=Counts(1, 1, 0, 1, 1, 1, 0, 0), accounting=Accounting.of(1, 1, 0), rejects_by_reason={},
        skipped_examples=[], wall_s=1.0, held_shards=(), dedup={}, policy=None, policy_report=None,
        hours_in=hours_in, hours_out=hours_in / 4, bytes_in=int(hours_in * 1e9),
        shards=(ShardSummary("shard-000000-000.tar", int(hours_in * 2e8), 1, 1.0, "0"),),
        config={"asr": {"device": asr_device, "num_gpus": gpus}},
        stages={**{k: {"worker_s": v} for k, v in stages.items()}, "job": {"wall_s": 1.0}})


def test_cpu_only_plan_arithmetic():
    manifest = _manifest(2.0, {"decode": 36.0, "vad": 72.0})  # 2 h of audio: 200x and 100x realtime
    result = plan(1000.0, [manifest], ClusterSpec(cpus=10))
    by_stage = {r["stage"]: r for r in result["stages"]}
    assert by_stage["decode"]["core_hours"] == pytest.approx(5.0)
    assert by_stage["vad"]["core_hours"] == pytest.approx(10.0)
    assert by_stage["vad"]["x_realtime_per_worker"] == pytest.approx(100.0)
    assert result["bottleneck"] == "vad"
    assert result["wall_hours"] == pytest.approx(1.5)
    assert result["kept_ratio"] == pytest.approx(0.25)
    assert result["storage_tb"]["raw"] == pytest.approx(1000 * 1e9 / 1e12)
    assert result["shard_count"] == pytest.approx(500)  # one shard per 2 h measured
    assert result["compacted_shard_count"] == 746  # 1000 h x 2e8 B/h in 256 MiB tars, rounded up


def test_gpu_stage_counts_gpu_hours_and_can_be_the_bottleneck():
    manifest = _manifest(1.0, {"decode": 3.6, "asr": 36.0}, asr_device="cuda", gpus=0.5)
    result = plan(100.0, [manifest], ClusterSpec(cpus=100, gpus=1))
    asr = next(r for r in result["stages"] if r["stage"] == "asr")
    assert asr["core_hours"] == 0.0 and asr["gpu_hours"] == pytest.approx(0.5)
    assert result["bottleneck"] == "asr"
    with pytest.raises(ValueError, match="no GPUs"):
        plan(100.0, [manifest], ClusterSpec(cpus=100, gpus=0))


def test_plan_cli_on_a_real_dataset(demo_dataset, tmp_path):
    out, _ = demo_dataset
    spec = tmp_path / "cluster.yaml"
    spec.write_text("cpus: 1000\ngpus: 0\n")
    result = subprocess.run([sys.executable, "-m", "audiomill", "plan", "--hours", "100000000", "--from", str(out),
                             "--cluster-spec", str(spec), "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    planned = json.loads(result.stdout)
    assert {"decode", "vad", "write"} <= {r["stage"] for r in planned["stages"]}
    assert planned["wall_hours"] == pytest.approx(sum(r["core_hours"] for r in planned["stages"]) / 1000)
    missing = subprocess.run([sys.executable, "-m", "audiomill", "plan", "--hours", "5", "--from", str(tmp_path / "x")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no manifest" in missing.stderr


def _measured_round(dataset: Path, number: int, cpus: int, walls: dict[str, float], markers: dict[str, dict]) -> None:
    from audiomill.rounds.store import PHASES, ROUND_JSON, RoundStore, write_json

    store = RoundStore(str(dataset), number)
    write_json(store.uri(ROUND_JSON), {"round": number, "config": {"num_cpus": cpus}})
    for phase in PHASES:
        store.mark(phase, {"wall_s": walls.get(phase, 1.0), **markers.get(phase, {})})


def test_a_round_is_priced_from_measured_phases(tmp_path):
    from audiomill.execution.round_planner import measured_rounds, plan_round

    _measured_round(tmp_path, 0, 2, {"train": 50.0}, {"train": {"rows": 10}})  # round 0 never annotates: skipped
    _measured_round(tmp_path, 1, 2, {"annotate": 36.0, "resynthesize": 9.0, "verify": 18.0, "train": 40.0},
                    {"annotate": {"clips": 100, "hours": 0.1}, "select": {"hours": 0.01},
                     "verify": {"acceptance_rate": 0.5}, "train": {"rows": 20}})
    measured = measured_rounds(str(tmp_path))
    assert [m.number for m in measured] == [1]
    result = plan_round(1000.0, 10.0, measured, ClusterSpec(cpus=100))
    phases = {r["phase"]: r for r in result["phases"]}
    assert phases["annotate"]["core_hours"] == pytest.approx(36.0 * 2 / 0.1 * 1000 / 3600)  # 2 CPUs measured
    assert phases["verify"]["core_hours"] == pytest.approx(18.0 * 2 / 0.01 * 10 / 3600)
    accepted = 10.0 * 1000 * 0.5  # 1000 clips per hour measured, half accepted
    assert result["expected"]["accepted_clips"] == pytest.approx(accepted)
    assert phases["train"]["amount"] == pytest.approx(20 + accepted)
    assert result["wall_hours"] == pytest.approx(sum(r["wall_hours"] for r in result["phases"]))
    assert result["bottleneck"] == "annotate"  # 200 core-hours, against 10 for verify
    with pytest.raises(ValueError, match="no finished round"):
        plan_round(1000.0, 10.0, [], ClusterSpec(cpus=100))
