"""DNSMOS cost: audio seconds scored per CPU-second (one onnxruntime thread), batched vs one by one.

Segments are real alsa-utils voice clips (Debian package) tiled into 3/9/20 s segments. Reports
x-realtime per core and the cost per hour of audio at each coverage the `mos` section offers
(off / sample at 5 % / full). Nothing is asserted. Usage: python benchmarks/mos.py [--segments 24]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from audiomill.models.dnsmos import WINDOW_S, Dnsmos
from audiomill.schema import SAMPLE_RATE
from audiomill.testing import signals
from audiomill.testing.dedup_set import resample


def real_segments(count: int) -> list[np.ndarray]:
    clips = []
    for path in [p for p in signals.alsa_clips() if "Noise" not in p.name]:
        audio, sr = signals.read_audio(path)
        clips.append(resample(audio, sr, SAMPLE_RATE))
    out = []
    for i in range(count):
        seconds = (3.0, 9.0, 20.0)[i % 3]
        tiled = np.concatenate([clips[(i + k) % len(clips)] for k in range(int(seconds) + 1)])
        out.append(tiled[: int(seconds * SAMPLE_RATE)])
    return out


def timed(fn) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=int, default=24)
    args = parser.parse_args()
    segments = real_segments(args.segments)
    audio_s = sum(s.size for s in segments) / SAMPLE_RATE
    result = {"audio_s": audio_s}
    for name, hop in (("hop_9.01s", WINDOW_S), ("hop_1s_reference", 1.0)):
        model = Dnsmos(threads=1, hop_s=hop)
        model.score(segments[:1])
        batched_cpu, batched_wall = timed(lambda: model.score(segments))
        single_cpu, _ = timed(lambda: [model.score([s]) for s in segments])
        result[name] = {"x_realtime_cpu_batched": audio_s / batched_cpu,
                        "x_realtime_cpu_one_by_one": audio_s / single_cpu,
                        "batched_over_one_by_one": single_cpu / batched_cpu,
                        "cpu_s_per_audio_hour_full": 3600 * batched_cpu / audio_s,
                        "cpu_s_per_audio_hour_sample_5pct": 0.05 * 3600 * batched_cpu / audio_s,
                        "wall_s": batched_wall}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
