"""Dedup benchmark: per-segment feature throughput and LSH memory, printed as ratios.

1. Features: espeak-ng speech (the corpus sentence pool) cut into 10 s segments, run through what
   the dedup stage does per segment: landmark fingerprint + window MinHash (``audio``), and the
   PCM hash (``exact``). Reported as audio seconds per second of one core, from both the
   process CPU clock and the wall clock (the wall number drops on a busy machine; the CPU one
   does not). Target: >= 2000x realtime per core for fingerprint + MinHash.
2. LSH memory: N synthetic 64-value signatures (default 1M; 1% planted near-duplicates), exploded
   to (band key, owner) rows, sorted and grouped into candidate pairs as the local global step
   does. Reported as RSS growth and bytes per signature, plus the time each step takes.

Nothing is asserted. Usage: python benchmarks/dedup.py [--seconds 600] [--signatures 1000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import time

import numpy as np
import psutil

from audiomill.config import DedupConfig
from audiomill.curation.dedup import lsh
from audiomill.curation.dedup.exact import pcm_hash
from audiomill.curation.dedup.minhash import MinHasher
from audiomill.curation.dedup.windows import audio_window_signatures
from audiomill.schema import SAMPLE_RATE

TARGET_X_REALTIME = 2000.0
SEGMENT_S = 10.0


def speech_segments(seconds: float) -> list[np.ndarray]:
    from audiomill.testing.corpus import _sentence_pool

    pool = [p[0] for p in _sentence_pool()]
    audio = np.concatenate(pool)
    reps = int(np.ceil(seconds * SAMPLE_RATE / audio.size))
    audio = np.tile(audio, reps)[: int(seconds * SAMPLE_RATE)]
    step = int(SEGMENT_S * SAMPLE_RATE)
    return [audio[i: i + step] for i in range(0, audio.size - step + 1, step)]


def time_features(segments: list[np.ndarray], fn, repeats: int = 3) -> dict[str, float]:
    """Best of ``repeats`` passes: audio seconds per CPU second and per wall second."""
    seconds = sum(s.size for s in segments) / SAMPLE_RATE
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        for segment in segments:
            fn(segment)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return {"audio_s": seconds, "x_realtime_cpu": round(seconds / best_cpu, 1),
            "x_realtime_wall": round(seconds / best_wall, 1)}


def lsh_memory(n: int, cfg: DedupConfig, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    rows = cfg.num_perm // cfg.bands
    process = psutil.Process()
    gc.collect()
    base = process.memory_info().rss
    signatures = rng.integers(0, 2**32, (n, cfg.num_perm), dtype=np.uint64).astype(np.uint32)
    planted = rng.choice(n, n // 100, replace=False)
    copies = signatures[planted].copy()
    changed = rng.random(copies.shape) < 0.1  # ~90% equal values: a near-duplicate
    copies[changed] = rng.integers(0, 2**32, changed.sum(), dtype=np.uint64).astype(np.uint32)
    signatures = np.concatenate([signatures, copies])
    after_sigs = process.memory_info().rss
    started = time.perf_counter()
    band_key, owner = lsh.explode(np.arange(len(signatures), dtype=np.int64), signatures, cfg.bands, rows)
    explode_s = time.perf_counter() - started
    after_index = process.memory_info().rss
    started = time.perf_counter()
    pairs = lsh.candidate_pairs(band_key, owner, cfg.max_bucket)
    pairs_s = time.perf_counter() - started
    found = sum(1 for a, b in pairs if b >= n and a == planted[b - n])
    total = len(signatures)
    return {
        "signatures": total, "num_perm": cfg.num_perm, "bands": cfg.bands, "rows": rows,
        "signature_bytes": signatures.nbytes, "index_rows": int(band_key.size),
        "rss_signatures_mb": round((after_sigs - base) / 2**20, 1),
        "rss_lsh_index_mb": round((after_index - after_sigs) / 2**20, 1),
        "lsh_index_bytes_per_signature": round((band_key.nbytes + owner.nbytes) / total, 1),
        "rss_total_bytes_per_signature": round((after_index - base) / total, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "explode_sort_s": round(explode_s, 2), "candidate_pairs_s": round(pairs_s, 2),
        "candidate_pairs": len(pairs), "planted_found": found, "planted": len(planted),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="speech seconds to fingerprint")
    parser.add_argument("--signatures", type=int, default=1_000_000, help="synthetic signatures for LSH")
    args = parser.parse_args()
    cfg = DedupConfig()
    hasher = MinHasher(cfg.num_perm)
    segments = speech_segments(args.seconds)
    results = {
        "machine": {"python": platform.python_version(), "cpus": psutil.cpu_count(),
                    "load_avg_1m": round(psutil.getloadavg()[0], 2)},
        "fingerprint_minhash": time_features(segments, lambda s: audio_window_signatures(s, hasher)),
        "pcm_hash": time_features(segments, pcm_hash),
        "all_audio_features": time_features(segments, lambda s: (pcm_hash(s), audio_window_signatures(s, hasher))),
        "lsh": lsh_memory(args.signatures, cfg),
    }
    x = results["fingerprint_minhash"]["x_realtime_cpu"]
    results["fingerprint_minhash"]["target"] = (f"{'meets' if x >= TARGET_X_REALTIME else 'below'} target "
                                                f"({TARGET_X_REALTIME:.0f}x realtime per core)")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
