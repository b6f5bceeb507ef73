"""Read throughput of ``audiomill.data.SegmentDataset`` against plain ``webdataset`` on the same shards.

Both read every segment of the dataset's shards and decode its FLAC to float32 in this process
(``num_workers=0``, one thread; the segment table is built once, outside the timing): the baseline is ``webdataset.WebDataset`` over the shard files
(tar scan, decode with soundfile); ours seeks by the index's offsets, checks the member header,
and adds shuffling and the index metadata. Prints audio seconds per CPU second for each and the
ratio, best of ``--repeat`` epochs. Without ``DATASET`` it builds the licensed test dataset
(``audiomill.testing.licensed``, ~16 s of kept audio: small, so ratios matter more than rates).
Nothing is asserted.

Usage: python benchmarks/loader.py [DATASET] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from audiomill import layout, schema


def _ours(root: str) -> float:
    """One epoch; the segment table is read once per dataset object (as in training), not per epoch."""
    from audiomill.data import LoaderOptions, SegmentDataset

    if root not in _DATASETS:
        _DATASETS[root] = SegmentDataset(root, LoaderOptions(seed=1))
    dataset = _DATASETS[root]
    dataset.set_epoch(dataset.epoch + 1)
    return sum(s[schema.AUDIO].size for s in dataset) / schema.SAMPLE_RATE


_DATASETS: dict[str, object] = {}


def _webdataset(root: str) -> float:
    import webdataset as wds

    shards = sorted(str(p) for p in Path(root, layout.SHARDS_DIR).glob("*.tar"))
    total = 0
    for sample in wds.WebDataset(shards, shardshuffle=False, empty_check=False):
        pcm, _ = sf.read(io.BytesIO(sample["flac"]), dtype="int16")
        total += (pcm.astype(np.float32) / 32767.0).size
    return total / schema.SAMPLE_RATE


def _best(read, root: str, repeat: int) -> tuple[float, float]:
    """(audio seconds per epoch, best CPU seconds per epoch)."""
    best, audio = float("inf"), 0.0
    for _ in range(repeat):
        started = time.process_time()
        audio = read(root)
        best = min(best, time.process_time() - started)
    return audio, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = args.dataset
    if root is None:
        from audiomill.testing.licensed import build_licensed_dataset

        root = str(build_licensed_dataset(Path(tempfile.mkdtemp(prefix="audiomill-bench-"))).root)
    results = {}
    for name, read in (("webdataset", _webdataset), ("audiomill.data", _ours)):
        audio, cpu = _best(read, root, args.repeat)
        results[name] = {"audio_s": round(audio, 3), "cpu_s": round(cpu, 4), "x_realtime_per_cpu_s": round(audio / cpu, 1)}
    results["ratio_vs_webdataset"] = round(results["audiomill.data"]["x_realtime_per_cpu_s"]
                                           / results["webdataset"]["x_realtime_per_cpu_s"], 2)
    print(json.dumps({"dataset": root, **results}, indent=2))


if __name__ == "__main__":
    main()
