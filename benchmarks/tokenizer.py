"""Semantic tokenizer: rate, unit quality, re-synthesis intelligibility and encode speed.

Trains a tokenizer through the real job (Ray Data features with the real Whisper encoder, faiss
k-means, Ray Train decoder on 2 CPU workers, registry) on espeak-ng speech, then evaluates it with
``jobs/tokenizer_eval.evaluate``:

- exact bit/s = 25 x log2(K), compression vs 128 kbps MP3 and 16-bit PCM, measured unigram
  entropy and lzma-coded rate, code use and perplexity on the training set;
- PNMI / purity against espeak-ng phone alignments on HELD-OUT sentences, next to MFCC k-means
  units (same K, fit on the same training audio) as the floor; and the same on REAL speech
  (``--real-dir``): asterisk-core-sounds-en-wav 1.6.1-1 prompts (one professional US voice, 8 kHz,
  fetched by name and version) and alsa-utils' clips, phones placed by espeak-ng synthesis + DTW
  (``recording_align``). A prompt's text is its Whisper transcript, kept only where tiny.en and
  base agree word for word (the package ships no transcripts);
- Whisper WER of original vs re-synthesis (trained decoder + Griffin-Lim) on held-out generated
  speech, and on real recordings shipped in alsa-utils (/usr/share/sounds/alsa, text = file name);
- encode x realtime on one thread, from wall time and from process CPU time (steadier on a busy
  machine), and decode x realtime. Targets are printed next to the numbers; nothing is asserted.

Training speech: the first ``--train-sentences`` of ``speech_dataset.SENTENCES`` in ``--voices``
voices, plus ``--extra-sentences`` sentences of the Python standard library's docstrings
(``testing/texts.py``) in ``--extra-voices`` voices (default 3), plus ``--real-train`` real asterisk
prompts that are not in the real probe; the held-out probe sentences (``--held-out`` of
``SENTENCES`` and the last ``--held-out-extra`` docstring sentences) are never among them.

Usage: PYTHONPATH=benchmarks python benchmarks/tokenizer.py [--train-sentences 20] [--voices 5]
       [--extra-sentences 400] [--codebook 256] [--encoder DIR] [--asr DIR] [--epochs 10] [--real-dir /tmp/tok-real]
       [--real-prompts 60] [--json out.json] [--work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import tempfile
import time

import numpy as np

from audiomill.execution.decoder_training import DecoderTraining
from audiomill.execution.ray_session import RaySettings
from audiomill.jobs import tokenizer_io
from audiomill.jobs.tokenizer import TrainRequest, TrainResult, train_tokenizer
from audiomill.jobs.tokenizer_eval import Clip, EvalRequest, evaluate
from audiomill.models.registry import ModelRegistry
from audiomill.models.tokenizer import SemanticTokenizer
from audiomill.testing.speech_dataset import SENTENCES, VOICES, Utterance, utterances, write_dataset
from audiomill.testing.texts import docstring_sentences
from audiomill.testing.whisper import real_whisper_dir

TARGETS = {"bitrate_bps": "<= 350", "encode_x_realtime_cpu": ">= 100 per core", "pnmi": ">= 0.5",
           "wer ratio": "resynth <= 2x original (generated)", "code_use": ">= 0.9"}


def encode_speed(tok: SemanticTokenizer, clips: list[np.ndarray]) -> dict[str, float]:
    """x realtime of ``encode`` on one thread: wall and process-CPU based."""
    seconds = sum(c.size for c in clips) / 16_000
    tok.encode(clips[0])  # load the encoder outside the timing
    wall, cpu = time.perf_counter(), time.process_time()
    tok.encode_batch(clips)
    return {"encode_x_realtime_wall": seconds / (time.perf_counter() - wall),
            "encode_x_realtime_cpu": seconds / (time.process_time() - cpu), "encode_audio_s": seconds}


ASTERISK_EN = {"asterisk-core-sounds-en-wav": "1.6.1-1"}


def asterisk_prompts(root: str, seed: int, exclude: frozenset[str] = frozenset()) -> list:
    """The en_US Allison prompts of the fetched package (none named in ``exclude``), in a seeded
    random order."""
    import random
    from pathlib import Path

    from debian_packages import fetch_debs

    tree = fetch_debs(ASTERISK_EN, Path(root))
    paths = sorted(p for p in tree.glob("usr/share/asterisk/sounds/en_US_f_Allison/*.wav") if p.stem not in exclude)
    random.Random(seed).shuffle(paths)
    return paths


def asterisk_train(root: str, count: int, exclude: set[str], seed: int = 1) -> list[Utterance]:
    """``count`` real prompts (any length 1-8 s, none of ``exclude``) as decoder training speech."""
    out = []
    for path in asterisk_prompts(root, seed, frozenset(exclude)):
        audio = tokenizer_io.read_clip(str(path)).audio
        if 1.0 <= audio.size / 16_000 <= 8.0:
            out.append(Utterance(key=f"asterisk-{path.stem}", text="", voice="asterisk-allison", audio=audio))
        if len(out) >= count:
            break
    return out


def asterisk_probe(root: str, count: int, seed: int = 0) -> tuple[Clip, ...]:
    """Up to ``count`` real prompts of 1.5-8 s whose tiny.en and base transcripts agree."""
    from faster_whisper import WhisperModel

    from audiomill.rounds.content import normalize_words

    models = [WhisperModel(str(real_whisper_dir(kind)), device="cpu", compute_type="int8", cpu_threads=2)
              for kind in ("tiny.en", "base")]
    clips = []
    for path in asterisk_prompts(root, seed):
        clip = tokenizer_io.read_clip(str(path))
        if not 1.5 <= clip.audio.size / 16_000 <= 8.0:
            continue
        texts = [" ".join(s.text for s in m.transcribe(clip.audio, beam_size=1, language="en",
                                                        without_timestamps=True)[0]) for m in models]
        if normalize_words(texts[0]) and normalize_words(texts[0]) == normalize_words(texts[1]):
            clips.append(Clip(path.stem, clip.audio, " ".join(normalize_words(texts[0]))))
        if len(clips) >= count:
            break
    return tuple(clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-sentences", type=int, default=20)
    parser.add_argument("--voices", type=int, default=5)
    parser.add_argument("--held-out", type=int, default=4)
    parser.add_argument("--codebook", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--delta-weight", type=float, default=DecoderTraining().delta_weight,
                        help="weight of the decoder's L1 loss on frame differences (0: plain L1)")
    parser.add_argument("--encoder", default="")
    parser.add_argument("--asr", default="")
    parser.add_argument("--extra-sentences", type=int, default=0,
                        help="more training text: this many stdlib docstring sentences x --extra-voices voices")
    parser.add_argument("--extra-voices", type=int, default=3, help="voices for --extra-sentences (of 6)")
    parser.add_argument("--held-out-extra", type=int, default=0,
                        help="also probe with the LAST this many docstring sentences (never trained on)")
    parser.add_argument("--real-dir", default="", help="fetch asterisk prompts here for real-speech PNMI")
    parser.add_argument("--real-prompts", type=int, default=60)
    parser.add_argument("--real-train", type=int, default=0,
                        help="add this many OTHER asterisk prompts (real speech, one voice) to the training set")
    parser.add_argument("--json", default="")
    parser.add_argument("--work", default="", help="keep the dataset and registry here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true",
                        help="with --work: evaluate the tokenizer already trained there instead of training")
    args = parser.parse_args()
    if args.reuse and not args.work:
        parser.error("--reuse needs --work DIR")
    encoder = args.encoder or str(real_whisper_dir("tiny.en"))
    asr = args.asr or str(real_whisper_dir("tiny.en"))
    train_items = utterances(SENTENCES[:args.train_sentences], VOICES[:args.voices])
    train_items += utterances(docstring_sentences()[:args.extra_sentences], VOICES[:args.extra_voices])
    held_out = SENTENCES[args.train_sentences:args.train_sentences + args.held_out]
    if args.held_out_extra:
        docstrings = docstring_sentences()
        if args.extra_sentences + args.held_out_extra > len(docstrings):
            parser.error(f"--extra-sentences + --held-out-extra must be <= {len(docstrings)} (no overlap)")
        held_out += docstrings[len(docstrings) - args.held_out_extra:]
    real_probe = asterisk_probe(args.real_dir, args.real_prompts) if args.real_dir else ()
    print(f"real probe: {len(real_probe)} asterisk prompts + alsa clips")
    if args.real_train and args.real_dir:
        train_items += asterisk_train(args.real_dir, args.real_train, {c.name for c in real_probe})
    scratch = contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory(prefix="bench-tokenizer-")
    with scratch as root:
        started = time.perf_counter()
        if args.reuse:  # evaluate the tokenizer an earlier run with the same --work trained
            result = TrainResult(ref="bench@production", training_data="",
                                 metrics=ModelRegistry(f"{root}/registry").lookup("bench@production").metrics)
        else:
            dataset = write_dataset(f"{root}/dataset", train_items, part_size=16)
            result = train_tokenizer(TrainRequest(
                datasets=(str(dataset),), name="bench", encoder=encoder, codebook_size=args.codebook,
                training=DecoderTraining(epochs=args.epochs, steps_per_epoch=args.steps,
                                         delta_weight=args.delta_weight), registry=f"{root}/registry",
                promote="production", work_dir=f"{root}/train" if args.work else "", ray=RaySettings(num_cpus=2)),
                print)
        train_s = time.perf_counter() - started
        tok = SemanticTokenizer.load("bench@production", f"{root}/registry")
        speed = encode_speed(tok, [u.audio for u in train_items[:40]])
        alsa = tokenizer_io.alsa_clips()
        report = evaluate(EvalRequest(
            "bench@production", asr, f"{root}/registry",
            dataset_clips=tuple(Clip(u.key, u.audio) for u in train_items),
            probe_sentences=tuple(held_out), probe_voices=("en-us", "en+f3"),
            real_clips=alsa, real_probe=alsa + real_probe), print)
    out = report.to_json() | {"train": {"seconds": train_s, "audio_s": sum(u.seconds for u in train_items),
                                        "segments": len(train_items), "metrics": result.metrics},
                              "encode": speed, "targets": TARGETS,
                              "design_point_6561_bps": 25 * math.log2(6561)}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle, indent=2)
    print(json.dumps({k: v for k, v in out.items() if k != "clips"}, indent=2))
    for clip in report.clips:
        print(f"{clip['set']:>9} {clip['name'][:40]:<40} orig={clip['wer_original']:.2f} "
              f"vocoder={clip['wer_vocoder']:.2f} resynth={clip['wer_resynth']:.2f} | {clip['resynth_text'][:60]}")


if __name__ == "__main__":
    main()
