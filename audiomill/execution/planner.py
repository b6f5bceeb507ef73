"""Capacity planning from measured throughput: what N raw hours cost on a given cluster.

Throughputs come from real manifests of datasets cleaned on the user's hardware (per stage
``worker_s`` and ``x_realtime_per_worker``), never from constants, so the plan is as true as the
runs it is based on. Stages run concurrently (streaming), so the wall time is set by the resource
(CPU or GPU) whose total demand over its supply is largest, and within it by the costliest stage.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from audiomill import layout, storage
from audiomill.config import ShardConfig
from audiomill.manifest import Manifest

_NOT_STAGES = {"job"}


@dataclass(frozen=True)
class ClusterSpec:
    cpus: int
    gpus: int = 0

    @classmethod
    def load(cls, path: str | None) -> ClusterSpec:
        if path is None:
            return cls(cpus=os.cpu_count() or 1, gpus=0)
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict) or int(data.get("cpus", 0)) < 1:
            raise ValueError(f"cluster spec {path}: needs `cpus: N` (>= 1) and optionally `gpus: N`")
        return cls(cpus=int(data["cpus"]), gpus=int(data.get("gpus", 0)))


def load_manifest(source: str) -> Manifest:
    """A manifest from a dataset root or a manifest.json path (local or s3://)."""
    uri = source if source.endswith(".json") else storage.join(source, layout.MANIFEST_FILE)
    try:
        return Manifest.from_json(storage.read_text(uri))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"no manifest at {storage.redact(uri)}: clean a sample first") from err


def measured_stages(manifests: list[Manifest]) -> dict[str, dict[str, float]]:
    """Per stage: worker seconds per input second, and GPUs per worker, pooled over manifests."""
    worker_s: dict[str, float] = {}
    gpus_per_worker: dict[str, float] = {}
    audio_s = 0.0
    for manifest in manifests:
        seconds_in = manifest.hours_in * 3600
        if seconds_in <= 0:
            continue
        audio_s += seconds_in
        asr = manifest.config.get("asr") or {}
        for stage, numbers in manifest.stages.items():
            if stage in _NOT_STAGES or not numbers.get("worker_s"):
                continue
            worker_s[stage] = worker_s.get(stage, 0.0) + numbers["worker_s"]
            if stage == "asr" and asr.get("device") == "cuda":
                gpus_per_worker[stage] = float(asr.get("num_gpus") or 1.0)
    if audio_s <= 0:
        raise ValueError("the manifests hold no input audio to measure throughput from")
    return {stage: {"worker_s_per_audio_s": seconds / audio_s, "gpus": gpus_per_worker.get(stage, 0.0)}
            for stage, seconds in sorted(worker_s.items())}


def plan(hours: float, manifests: list[Manifest], spec: ClusterSpec) -> dict[str, Any]:
    """Core-hours, GPU-hours, storage and wall time per stage for ``hours`` of raw audio."""
    if hours <= 0:
        raise ValueError("hours must be > 0")
    stages = measured_stages(manifests)
    rows = []
    for stage, m in stages.items():
        worker_hours = hours * m["worker_s_per_audio_s"]
        gpu_hours = worker_hours * m["gpus"]
        rows.append({"stage": stage, "core_hours": 0.0 if m["gpus"] else worker_hours,
                     "gpu_hours": gpu_hours, "x_realtime_per_worker": 1 / m["worker_s_per_audio_s"]})
    cpu_wall = sum(r["core_hours"] for r in rows) / spec.cpus
    if any(r["gpu_hours"] for r in rows) and spec.gpus == 0:
        raise ValueError("the measured runs used GPU stages but the cluster spec has no GPUs")
    gpu_wall = sum(r["gpu_hours"] for r in rows) / spec.gpus if spec.gpus else 0.0
    for r in rows:
        r["wall_hours_share"] = r["gpu_hours"] / spec.gpus if r["gpu_hours"] else r["core_hours"] / spec.cpus
    bottleneck = max(rows, key=lambda r: r["wall_hours_share"])["stage"] if rows else None
    seconds_in = sum(m.hours_in for m in manifests) * 3600
    bytes_out = sum(s.bytes for m in manifests for s in m.shards)
    bytes_in = sum(m.bytes_in for m in manifests)
    kept = sum(m.hours_out for m in manifests) * 3600 / seconds_in
    return {
        "hours_in": hours,
        "cluster": {"cpus": spec.cpus, "gpus": spec.gpus},
        "based_on": {"manifests": len(manifests), "audio_hours": seconds_in / 3600},
        "stages": rows,
        "bottleneck": bottleneck,
        "wall_hours": max(cpu_wall, gpu_wall),
        "cpu_wall_hours": cpu_wall,
        "gpu_wall_hours": gpu_wall,
        "kept_ratio": kept,
        "storage_tb": {"raw": hours * 3600 * bytes_in / seconds_in / 1e12,
                       "shards": hours * 3600 * bytes_out / seconds_in / 1e12},
        # shards never span parts, so this follows the measured runs' part sizing ...
        "shard_count": hours * 3600 * sum(len(m.shards) for m in manifests) / seconds_in,
        # ... and `audiomill compact` repacks them into tars of the runs' shard.target_bytes
        "compacted_shard_count": math.ceil(hours * 3600 * bytes_out / seconds_in / _target_bytes(manifests)),
    }


def _target_bytes(manifests: list[Manifest]) -> int:
    """The measured runs' ``shard.target_bytes`` (the smallest, if they differ)."""
    default = ShardConfig().target_bytes
    return min(int((m.config.get("shard") or {}).get("target_bytes", default)) for m in manifests)
