"""Semantic tokenizer: rate, unit quality, re-synthesis intelligibility and encode speed.

Trains a tokenizer through the real job (Ray Data features with the real Whisper encoder, faiss
k-means, Ray Train decoder on 2 CPU workers, registry) on espeak-ng speech, then evaluates it with
``jobs/tokenizer_eval.evaluate``:

- exact bit/s = 25 x log2(K), compression vs 128 kbps MP3 and 16-bit PCM, measured unigram
  entropy and lzma-coded rate, code use and perplexity on the training set;
- PNMI / purity against espeak-ng phone alignments on HELD-OUT sentences, next to MFCC k-means
  units (same K, fit on the same training audio) as the floor;
- Whisper WER of original vs re-synthesis (trained decoder + Griffin-Lim) on held-out generated
  speech, and on real recordings shipped in alsa-utils (/usr/share/sounds/alsa, text = file name);
- encode x realtime on one thread, from wall time and from process CPU time (steadier on a busy
  machine), and decode x realtime. Targets are printed next to the numbers; nothing is asserted.

Usage: python benchmarks/tokenizer.py [--train-sentences 20] [--voices 5] [--codebook 256]
       [--encoder DIR] [--asr DIR] [--epochs 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time

import numpy as np

from audiomill.execution.decoder_training import DecoderTraining
from audiomill.execution.ray_session import RaySettings
from audiomill.jobs import tokenizer_io
from audiomill.jobs.tokenizer import TrainRequest, train_tokenizer
from audiomill.jobs.tokenizer_eval import Clip, EvalRequest, evaluate
from audiomill.models.tokenizer import SemanticTokenizer
from audiomill.testing.speech_dataset import SENTENCES, VOICES, utterances, write_dataset
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-sentences", type=int, default=20)
    parser.add_argument("--voices", type=int, default=5)
    parser.add_argument("--held-out", type=int, default=4)
    parser.add_argument("--codebook", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--encoder", default="")
    parser.add_argument("--asr", default="")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    encoder = args.encoder or str(real_whisper_dir("tiny.en"))
    asr = args.asr or str(real_whisper_dir("tiny.en"))
    train_items = utterances(SENTENCES[:args.train_sentences], VOICES[:args.voices])
    held_out = SENTENCES[args.train_sentences:args.train_sentences + args.held_out]
    with tempfile.TemporaryDirectory(prefix="bench-tokenizer-") as root:
        dataset = write_dataset(f"{root}/dataset", train_items, part_size=16)
        started = time.perf_counter()
        result = train_tokenizer(TrainRequest(
            datasets=(str(dataset),), name="bench", encoder=encoder, codebook_size=args.codebook,
            training=DecoderTraining(epochs=args.epochs, steps_per_epoch=args.steps), registry=f"{root}/registry",
            promote="production", ray=RaySettings(num_cpus=2)), print)
        train_s = time.perf_counter() - started
        tok = SemanticTokenizer.load("bench@production", f"{root}/registry")
        speed = encode_speed(tok, [u.audio for u in train_items[:40]])
        report = evaluate(EvalRequest(
            "bench@production", asr, f"{root}/registry",
            dataset_clips=tuple(Clip(u.key, u.audio) for u in train_items),
            probe_sentences=tuple(held_out), probe_voices=("en-us", "en+f3"),
            real_clips=tokenizer_io.alsa_clips()), print)
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
              f"resynth={clip['wer_resynth']:.2f} | {clip['resynth_text'][:60]}")


if __name__ == "__main__":
    main()
