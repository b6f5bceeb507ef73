"""Throughput of the quality metrics (``QualityStage``) in audio seconds per wall second per core.

Builds ``--minutes`` of 16 kHz segments in memory (espeak sentences strung with pauses over a
noise floor, some with white noise, music or clipping mixed in; 1-30 s each, like VAD output),
groups them into Arrow batches of about ``--batch-minutes`` (one part's worth), and times
``QualityStage`` over all batches, single-threaded (BLAS/OpenMP pinned to one thread), best of
``--repeat`` runs. Prints x realtime per core from wall time and from process CPU time (the CPU
figure is steadier on a shared machine). Target: >= 1000x realtime per core. Nothing is asserted.

Usage: python benchmarks/quality.py [--minutes 30] [--batch-minutes 10] [--repeat 3]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from audiomill import schema  # noqa: E402
from audiomill.pipelines.quality import QualityStage  # noqa: E402
from audiomill.testing import signals  # noqa: E402
from audiomill.testing.corpus import EN  # noqa: E402

TARGET_XRT_PER_CORE = 1000.0
SR = schema.SAMPLE_RATE


def make_segments(minutes: float, seed: int = 0) -> list[np.ndarray]:
    """Segments of 1-30 s totalling ``minutes``; every fourth is degraded in some way."""
    rng = np.random.default_rng(seed)
    pool = [signals.resample(*signals.espeak(text, voice), SR) for text in EN for voice in ("en-us", "en+f3")]
    music = signals.music_like(30.0, SR, seed)
    segments, total = [], 0.0
    while total < minutes * 60:
        target = int(rng.uniform(1.0, 30.0) * SR)
        pieces, length = [], 0
        while length < target:
            pieces += [pool[int(rng.integers(len(pool)))], signals.silence(rng.uniform(0.1, 0.5), SR)]
            length += pieces[-2].size + pieces[-1].size
        audio = np.concatenate(pieces)[:target] + rng.standard_normal(target).astype(np.float32) * 3e-4
        kind = len(segments) % 8
        if kind == 1:
            audio += rng.standard_normal(target).astype(np.float32) * 0.03
        elif kind == 3:
            audio += 0.5 * np.resize(music, target)
        elif kind == 5:
            audio = np.clip(audio * 8, -1.0, 1.0)
        segments.append(audio.astype(np.float32))
        total += target / SR
    return segments


def batches(segments: list[np.ndarray], batch_minutes: float) -> list[pa.Table]:
    tables, current, seconds = [], [], 0.0
    for segment in segments:
        current.append(segment)
        seconds += segment.size / SR
        if seconds >= batch_minutes * 60:
            tables.append(_table(current))
            current, seconds = [], 0.0
    if current:
        tables.append(_table(current))
    return tables


def _table(segments: list[np.ndarray]) -> pa.Table:
    return pa.table({schema.KEY: [f"k{i}" for i in range(len(segments))],
                     schema.AUDIO: pa.array([s.tobytes() for s in segments], pa.large_binary())})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--batch-minutes", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    segments = make_segments(args.minutes)
    tables = batches(segments, args.batch_minutes)
    audio_s = sum(s.size for s in segments) / SR
    stage = QualityStage()
    stage(tables[0].slice(0, 2))  # setup and first-call allocations
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for table in tables:
            stage.process(table)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    result = {"benchmark": "quality", "audio_s": round(audio_s, 1), "segments": len(segments),
              "batches": len(tables), "wall_s": round(best_wall, 3), "cpu_s": round(best_cpu, 3),
              "x_realtime_per_core_wall": round(audio_s / best_wall, 1),
              "x_realtime_per_core_cpu": round(audio_s / best_cpu, 1),
              "target_x_realtime_per_core": TARGET_XRT_PER_CORE, "machine": platform.machine(),
              "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(result))
    verdict = "meets target" if result["x_realtime_per_core_wall"] >= TARGET_XRT_PER_CORE else "below target"
    print(f"quality metrics: {audio_s / 60:.1f} min of audio in {best_wall:.2f} s wall "
          f"({best_cpu:.2f} s CPU) on one core: {result['x_realtime_per_core_wall']:.0f}x realtime "
          f"({result['x_realtime_per_core_cpu']:.0f}x by CPU time); target {TARGET_XRT_PER_CORE:.0f}x: {verdict}")


if __name__ == "__main__":
    main()
