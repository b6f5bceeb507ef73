"""Language ID on short REAL recordings, per language and clip length, for packaged Whisper models.

Clips (fetched by package name and version with ``debian_packages.fetch_debs``; never committed):

- asterisk-core-sounds-{en,es,fr,it,ru}-wav 1.6.1-1 (CC-BY-SA-3.0): telephone prompts, one
  professional voice per language (en_US Allison, es_MX Allison, fr_CA June, it_IT Carlo,
  ru_RU IvrvoiceRU), 8 kHz WAV.
- fillets-ng-data-cs / -nl 1.0.1-1.1 (GPL-2+): the game's acted Czech and Dutch dialogue,
  several voice actors, 22 kHz Ogg Vorbis.

Each file is decoded as ``clean`` decodes it (16 kHz mono), leading/trailing silence is cut at
-45 dBFS (10 ms frames), and the remaining real length puts it in a bucket (1-2 s, 2-5 s,
5-10 s; nothing is padded or cut to length). Up to ``--per-cell`` clips per language x bucket are
drawn with a fixed seed, and every model sees the same clips through the pipeline's own
``WhisperAsr.detect_languages`` (what the ASR stage runs per source), int8 on CPU.

Printed per model: accuracy and mean top-1 probability per language x bucket, LID speed (clip
audio seconds per wall second, "x realtime", and ms per clip; Whisper pads every clip to 30 s,
so the cost per clip is fixed), and a threshold sweep for a ``min`` rule on ``asr_language_prob``:
the share of correctly identified clips it would drop and of misidentified clips it would catch.

Usage:
  PYTHONPATH=. python benchmarks/lid.py --dir /tmp/lid-eval [--model base --model small]
      [--per-cell 30] [--threads 2] [--json out.json] [--seed 1 --exclude-from out.json]
``--model`` is a packaged kind (tiny.en, base, small), a CTranslate2 directory or a registry ref.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

PACKAGES = {
    "asterisk-core-sounds-en-wav": "1.6.1-1",
    "asterisk-core-sounds-es-wav": "1.6.1-1",
    "asterisk-core-sounds-fr-wav": "1.6.1-1",
    "asterisk-core-sounds-it-wav": "1.6.1-1",
    "asterisk-core-sounds-ru-wav": "1.6.1-1",
    "fillets-ng-data-cs": "1.0.1-1.1",
    "fillets-ng-data-nl": "1.0.1-1.1",
}
ASTERISK = "usr/share/asterisk/sounds"
SOURCES = {  # language -> (glob under the unpacked tree, package)
    "en": (f"{ASTERISK}/en_US_f_Allison/**/*.wav", "asterisk-core-sounds-en-wav"),
    "es": (f"{ASTERISK}/es_MX_f_Allison/**/*.wav", "asterisk-core-sounds-es-wav"),
    "fr": (f"{ASTERISK}/fr_CA_f_June/**/*.wav", "asterisk-core-sounds-fr-wav"),
    "it": (f"{ASTERISK}/it_IT_m_Carlo/**/*.wav", "asterisk-core-sounds-it-wav"),
    "ru": (f"{ASTERISK}/ru_RU_f_IvrvoiceRU/**/*.wav", "asterisk-core-sounds-ru-wav"),
    "cs": ("usr/share/games/fillets-ng/sound/**/cs/*.ogg", "fillets-ng-data-cs"),
    "nl": ("usr/share/games/fillets-ng/sound/**/nl/*.ogg", "fillets-ng-data-nl"),
}
BUCKETS = ((1.0, 2.0), (2.0, 5.0), (5.0, 10.0))
TRIM_DBFS = -45.0
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Clip:
    path: str
    language: str
    package: str
    duration_s: float  # after trimming silence
    bucket: str


def bucket_name(low: float, high: float) -> str:
    return f"{low:g}-{high:g}s"


def speech_bounds(tree: Path) -> dict[str, dict]:
    """Per file of every language: (start_s, end_s) of its sound above -45 dBFS, cached in
    ``tree/../lid_bounds.json`` (decoding every file is the slow part of a rerun)."""
    from audiomill.audio import DecodeRejected, decode_audio
    from audiomill.config import DecodeConfig
    from audiomill.testing.signals import trim_silence_bounds

    cache = tree.parent / "lid_bounds.json"
    bounds = json.loads(cache.read_text()) if cache.is_file() else {}
    for language, (pattern, _) in SOURCES.items():
        for path in sorted(tree.glob(pattern)):
            key = str(path.relative_to(tree))
            if key in bounds:
                continue
            try:
                audio = decode_audio(str(path), DecodeConfig()).samples
                bounds[key] = list(trim_silence_bounds(audio, 16_000, TRIM_DBFS)) + [language]
            except (DecodeRejected, ValueError):
                bounds[key] = None
    cache.write_text(json.dumps(bounds))
    return bounds


def load_clips(tree: Path, per_cell: int, seed: int, exclude: frozenset[str] = frozenset()
               ) -> tuple[list[Clip], list[np.ndarray]]:
    """Up to ``per_cell`` trimmed clips per language x bucket (none of ``exclude``), and their
    16 kHz audio."""
    from audiomill.audio import decode_audio
    from audiomill.config import DecodeConfig

    rng, clips, audios = random.Random(seed), [], []
    bounds = speech_bounds(tree)
    for language, (_, package) in SOURCES.items():
        cells: dict[str, list[Clip]] = defaultdict(list)
        for key, found in sorted(bounds.items()):
            if found is None or found[2] != language or key in exclude:
                continue
            duration = found[1] - found[0]
            for low, high in BUCKETS:
                if low <= duration < high:
                    cells[bucket_name(low, high)].append(Clip(key, language, package, round(duration, 3),
                                                              bucket_name(low, high)))
        for name in sorted(cells):
            for clip in rng.sample(cells[name], min(per_cell, len(cells[name]))):
                start_s, end_s, _ = bounds[clip.path]
                audio = decode_audio(str(tree / clip.path), DecodeConfig()).samples
                clips.append(clip)
                audios.append(audio[int(start_s * 16_000):int(end_s * 16_000)])
    return clips, audios


def model_dir(spec: str, scratch: Path) -> str:
    """A packaged kind (assembled into ``scratch``), a directory, or a registry reference."""
    from audiomill.config import MODEL_CACHE_DIR
    from audiomill.models import whisper_packages
    from audiomill.models.registry import resolve_model

    if spec in whisper_packages.PACKAGES:
        return str(whisper_packages.assemble(spec, scratch / spec))
    return resolve_model(spec).local_dir(MODEL_CACHE_DIR)


def run_model(directory: str, audios: list[np.ndarray], threads: int) -> tuple[list, float]:
    """(guesses, LID wall seconds) over every clip; the model load is not timed."""
    from audiomill.models.asr import WhisperAsr

    asr = WhisperAsr(directory, cpu_threads=threads)
    if not asr.multilingual:
        raise ValueError(f"{directory} is English-only: no language ID")
    asr.detect_languages(audios[:2])  # warm-up
    start = time.perf_counter()
    guesses = asr.detect_languages(audios, batch_size=8)
    return guesses, time.perf_counter() - start


def summarize(clips: list[Clip], guesses: list, wall_s: float) -> dict:
    """Accuracy / mean top-1 probability per (language, bucket), speed, threshold sweep, confusions."""
    cells: dict[tuple[str, str], list[tuple[bool, float]]] = defaultdict(list)
    confusions: Counter = Counter()
    for clip, guess in zip(clips, guesses):
        right = guess.language == clip.language
        for key in ((clip.language, clip.bucket), (clip.language, "all"), ("all", clip.bucket), ("all", "all")):
            cells[key].append((right, guess.probability))
        if not right:
            confusions[f"{clip.language}->{guess.language}"] += 1
    table = {f"{lang}|{bucket}": {"n": len(v), "accuracy": float(np.mean([r for r, _ in v])),
                                  "mean_p": float(np.mean([p for _, p in v]))} for (lang, bucket), v in cells.items()}
    sweep = {}
    for bucket in [bucket_name(*b) for b in BUCKETS] + ["all"]:
        results = cells[("all", bucket)]
        right = np.array([p for r, p in results if r])
        wrong = np.array([p for r, p in results if not r])
        sweep[bucket] = {f"{t:g}": {"correct_dropped": float((right < t).mean()) if right.size else None,
                                    "wrong_caught": float((wrong < t).mean()) if wrong.size else None,
                                    "n_correct": int(right.size), "n_wrong": int(wrong.size)} for t in THRESHOLDS}
    audio_s = sum(c.duration_s for c in clips)
    return {"cells": table, "sweep": sweep, "confusions": dict(confusions.most_common(12)),
            "speed": {"clips": len(clips), "audio_s": round(audio_s, 1), "wall_s": round(wall_s, 2),
                      "x_realtime": round(audio_s / wall_s, 1), "ms_per_clip": round(1000 * wall_s / len(clips), 1)}}


def print_report(name: str, result: dict) -> None:
    buckets = [bucket_name(*b) for b in BUCKETS] + ["all"]
    print(f"\n## {name}: accuracy (mean top-1 probability) [clips]")
    print("| language | " + " | ".join(buckets) + " |")
    print("|---" * (len(buckets) + 1) + "|")
    for lang in list(SOURCES) + ["all"]:
        row = []
        for bucket in buckets:
            cell = result["cells"].get(f"{lang}|{bucket}")
            row.append(f"{cell['accuracy']:.2f} ({cell['mean_p']:.2f}) [{cell['n']}]" if cell else "-")
        print(f"| {lang} | " + " | ".join(row) + " |")
    speed = result["speed"]
    print(f"\nLID speed: {speed['x_realtime']}x realtime ({speed['ms_per_clip']} ms per clip, "
          f"{speed['clips']} clips, {speed['audio_s']} s of audio)")
    print("\nmin asr_language_prob t: correct clips dropped / wrong-language clips caught, per bucket")
    print("| t | " + " | ".join(buckets) + " |")
    print("|---" * (len(buckets) + 1) + "|")
    for t in THRESHOLDS:
        cells = []
        for bucket in buckets:
            s = result["sweep"][bucket][f"{t:g}"]
            fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            cells.append(f"{fmt(s['correct_dropped'])} / {fmt(s['wrong_caught'])} ({s['n_wrong']} wrong)")
        print(f"| {t:g} | " + " | ".join(cells) + " |")
    print(f"\nconfusions: {result['confusions']}")


def main() -> None:
    from debian_packages import fetch_debs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="where packages are fetched and unpacked")
    parser.add_argument("--model", action="append", help="packaged kind, directory or registry ref (repeatable)")
    parser.add_argument("--per-cell", type=int, default=30, help="clips per language x length bucket")
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--exclude-from", type=Path, help="a --json report whose clips to leave out "
                                                          "(a fresh set to check a threshold chosen on it)")
    args = parser.parse_args()
    tree = fetch_debs(PACKAGES, args.dir)
    exclude = (frozenset(c["path"] for c in json.loads(args.exclude_from.read_text())["clips"])
               if args.exclude_from else frozenset())
    clips, audios = load_clips(tree, args.per_cell, args.seed, exclude)
    print(f"{len(clips)} real clips: {dict(Counter(c.language for c in clips))}; "
          f"{dict(Counter(c.bucket for c in clips))}")
    report: dict = {"clips": [asdict(c) for c in clips], "models": {}}
    with tempfile.TemporaryDirectory(prefix="lid-models-") as scratch:
        for spec in args.model or ["base", "small"]:
            try:
                directory = model_dir(spec, Path(scratch))
                guesses, wall_s = run_model(directory, audios, args.threads)
            except (FileNotFoundError, ValueError) as err:
                print(f"\n## {spec}: not measured: {err}")
                report["models"][spec] = {"error": str(err)}
                continue
            result = summarize(clips, guesses, wall_s)
            result["guesses"] = [[g.language, round(g.probability, 4)] for g in guesses]
            report["models"][spec] = result
            print_report(spec, result)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
