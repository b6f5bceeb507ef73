"""The global dedup step on synthetic feature tables (no audio): wall time and driver peak RSS.

Writes ``--parts`` feature files (``_parts/part-N/features.parquet``, the shape the writer
produces) holding ``--signatures`` audio-window MinHash signatures in all, ``--windows`` per
segment (a 10 s segment has 8), random except for ``--dup-rate`` of segments that copy another
segment's windows with a few values changed (planted near-duplicates) and the same share of exact
PCM-hash copies. Then, in a fresh subprocess, runs the edge search and cluster resolution of
``jobs/dedup.py`` (through the runner) as the job does (local runner: in process; ``--ray``: on Ray Data
with ``--cpus``) and reports wall seconds, the subprocess's peak RSS (``ru_maxrss``: the driver;
Ray's workers are separate processes) and how many planted pairs came back as edges.

Usage: python benchmarks/dedup_global.py [--signatures 1000000] [--windows 8] [--parts 200] [--ray]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NUM_PERM = 64


def write_features(root: Path, signatures: int, windows: int, parts: int, dup_rate: float, seed: int) -> dict:
    import pyarrow.parquet as pq

    from audiomill import layout, schema
    from audiomill.curation.dedup.features import feature_schema, windows_array

    rng = np.random.default_rng(seed)
    segments = signatures // windows
    sigs = rng.integers(0, 2**32, size=(segments, windows, NUM_PERM), dtype=np.uint32)
    hashes = np.array([rng.bytes(16).hex() for _ in range(segments)], dtype=object)  # like blake2b hex
    copies = rng.choice(segments, size=(int(segments * dup_rate), 2), replace=False)
    for dst, src in copies:  # near-duplicate: the same windows, 3 of 64 values per window changed
        sigs[dst] = sigs[src]
        sigs[dst, :, rng.integers(0, NUM_PERM, 3)] ^= 1
    exact = rng.choice(segments, size=(int(segments * dup_rate), 2), replace=False)
    hashes[exact[:, 0]] = hashes[exact[:, 1]]
    keys = np.array([f"{i:012d}" for i in range(segments)], dtype=object)
    bounds = np.linspace(0, segments, parts + 1).astype(int)
    for pid, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        n = int(hi - lo)
        table = feature_schema(NUM_PERM).empty_table().to_pydict()
        table.update({schema.KEY: keys[lo:hi].tolist(), schema.SOURCE_ID: keys[lo:hi].tolist(),
                      schema.PART_ID: [pid] * n, schema.AUDIO_DURATION_S: [10.0] * n,
                      schema.DEDUP_KEEP_SCORE: rng.random(n).tolist(), schema.DEDUP_PCM_HASH: hashes[lo:hi].tolist(),
                      schema.DEDUP_TEXT_MINHASH: [None] * n})
        table[schema.DEDUP_AUDIO_MINHASH] = windows_array(list(sigs[lo:hi]), NUM_PERM)
        import pyarrow as pa

        out = Path(layout.part_file(str(root), pid, layout.FEATURES_FILE))
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(table, schema=feature_schema(NUM_PERM)), out)
    return {"segments": segments, "planted_audio_pairs": len(copies), "planted_exact_pairs": len(exact)}


def child(root: Path, parts: int, use_ray: bool, cpus: int) -> dict:
    from audiomill import layout
    from audiomill.config import load_config
    from audiomill.curation.dedup import edges as E
    from audiomill.curation.dedup.cluster import resolve
    from audiomill.curation.dedup.search import EdgeSearch
    from audiomill.execution.runners import make_runner

    cfg = load_config(inputs=[str(root)], output=str(root), overrides=[f"runner.kind={'ray' if use_ray else 'local'}"])
    uris = [layout.part_file(str(root), pid, layout.FEATURES_FILE) for pid in range(parts)]
    started = time.perf_counter()
    search = EdgeSearch(uris, [], E.MatchOptions.from_config(cfg.dedup), cfg.dedup.num_perm)
    runner_cfg = cfg.runner.model_copy(update={"num_cpus": cpus})
    with make_runner(runner_cfg, dedup_min_rows=0) as runner:  # the job's own edge search, either runner
        search_started = time.perf_counter()
        table = runner.find_dedup_edges(search)
        search_s = time.perf_counter() - search_started
    edges, nodes = E.edges_from_table(table)
    decisions = resolve(nodes, edges)
    wall = time.perf_counter() - started
    kinds: dict[str, int] = {}
    for edge in edges:
        kinds[edge.kind] = kinds.get(edge.kind, 0) + 1
    return {"runner": "ray" if use_ray else "local", "wall_s": wall, "edge_search_s": search_s,
            "driver_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "edges": kinds, "dropped": sum(not d.kept for d in decisions.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signatures", type=int, default=1_000_000, help="audio-window signatures in all")
    parser.add_argument("--windows", type=int, default=8, help="window signatures per segment")
    parser.add_argument("--parts", type=int, default=200)
    parser.add_argument("--dup-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ray", action="store_true", help="edge search on Ray Data (as --runner ray)")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audiomill-bench"))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.parts, args.ray, args.cpus)))
        return
    root = args.workdir / f"dedup-{args.signatures}-{args.windows}w-{args.parts}p"
    truth_path = root / "_synthetic.json"
    if not truth_path.is_file():
        started = time.perf_counter()
        truth = write_features(root, args.signatures, args.windows, args.parts, args.dup_rate, args.seed)
        truth["write_s"] = time.perf_counter() - started
        truth_path.write_text(json.dumps(truth))
    truth = json.loads(truth_path.read_text())
    cmd = [sys.executable, __file__, "--child", str(root), "--parts", str(args.parts), "--cpus", str(args.cpus)]
    proc = subprocess.run(cmd + (["--ray"] if args.ray else []), capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps({"signatures": args.signatures, **truth, **result}, indent=2))


if __name__ == "__main__":
    main()
