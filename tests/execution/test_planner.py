"""Capacity plans follow from measured manifests: exact arithmetic on synthetic ones, CLI on a real one."""

from __future__ import annotations

import json
import subprocess
import sys

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
