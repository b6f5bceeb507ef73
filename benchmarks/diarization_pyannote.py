"""DER and speed of the pyannote.audio backend vs the fallback diarizer, on held-out conversations.

The pyannote pipeline is ``--pipeline-dir`` (pretrained weights copied to disk, or a previous
``audiomill diarizer train-pyannote``), or is trained first into ``--workdir`` with
``--conversations``/``--epochs`` (generated espeak voices from ``TRAIN_VOICES``). Held-out
conversations use ``audiomill.testing.mixtures`` defaults (voices en+m3, en+f3, en+m7; seeds
5000+, never used in training). Both diarizers get the same spans: the reference turns padded
by 0.1 s ("oracle": each span is one turn, so the fallback only has to cluster spans) and
silero-vad spans as the clean pipeline makes them ("vad": close turns merge into one span, which
the diarizer must split), as ``benchmarks/diarization.py`` does; DER has a 0.25 s collar. Speed: audio seconds / diarizer wall seconds, one
torch thread, pipeline load excluded; the ratio line compares it with the fallback in this run.

Usage: python benchmarks/diarization_pyannote.py [--pipeline-dir DIR | --conversations 8 --epochs 20]
       [--mixtures 5] [--turns 12] [--known-count]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from audiomill.config import VadConfig
from audiomill.jobs.pyannote_train import PyannoteTrainRequest, run_pyannote_train
from audiomill.models.diarization import FallbackDiarizer
from audiomill.models.pyannote_backend import PyannoteDiarizer
from audiomill.models.pyannote_training import SegmentationOptions
from audiomill.models.speech_spans import speech_spans
from audiomill.models.vad import FRAME_S, SileroVad
from audiomill.schema import SAMPLE_RATE
from audiomill.testing.mixtures import conversation, diarization_error_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline-dir", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audiomill-bench/pyannote"))
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--mixtures", type=int, default=5)
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--known-count", action="store_true",
                        help="give pyannote the true speaker count (separates counting from assignment)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    pipeline_dir = args.pipeline_dir or _train(args)
    diarizers = {"pyannote": PyannoteDiarizer(pipeline_dir, device="cpu"), "fallback": FallbackDiarizer()}
    results = {}
    vad = SileroVad(threads=1)
    for speakers in (2, 3):
        diarizers["pyannote"].num_speakers = speakers if args.known_count else None
        for kind in ("oracle", "vad"):
            key = f"{speakers}_{kind}"
            results[key] = _score(diarizers, speakers, args.mixtures, args.turns, kind, vad)
            print(key, json.dumps(results[key]), flush=True)
    speed = {s: round(r["pyannote"]["x_realtime"] / r["fallback"]["x_realtime"], 3) for s, r in results.items()}
    print(json.dumps({"pipeline_dir": str(pipeline_dir), "mixtures": args.mixtures, "turns": args.turns,
                      "known_count": args.known_count,
                      "results": results, "pyannote_speed_vs_fallback": speed}, indent=1))


def _train(args: argparse.Namespace) -> Path:
    out = args.workdir / f"pipeline-c{args.conversations}-e{args.epochs}"
    started = time.perf_counter()
    result = run_pyannote_train(PyannoteTrainRequest(out, conversations=args.conversations,
                                                     options=SegmentationOptions(epochs=args.epochs)),
                                on_progress=lambda m: print(f"[{time.perf_counter() - started:6.1f} s] {m}",
                                                            flush=True))
    print("trained:", json.dumps(result.to_dict()), flush=True)
    return out


def _spans(conv, kind: str, vad: SileroVad) -> list[tuple[float, float]]:
    if kind == "oracle":
        return [(t.start_s - 0.1, t.end_s + 0.1) for t in conv.turns]
    (probs,) = vad.speech_probabilities_batch([conv.audio])
    found = speech_spans(probs, conv.audio, VadConfig(), frame_s=FRAME_S)
    return list(zip(found.starts_s.tolist(), found.ends_s.tolist()))


def _score(diarizers: dict, speakers: int, mixtures: int, turns: int, kind: str, vad: SileroVad) -> dict:
    per: dict[str, dict[str, list]] = {name: {"der": [], "count": [], "work_s": []} for name in diarizers}
    audio_s = 0.0
    for seed in range(mixtures):
        conv = conversation(speakers, turns, seed=5000 + seed)
        reference = [(t.start_s, t.end_s, t.speaker) for t in conv.turns]
        spans = _spans(conv, kind, vad)
        audio_s += conv.audio.size / SAMPLE_RATE
        for name, diarizer in diarizers.items():
            started = time.perf_counter()
            found = diarizer.diarize(conv.audio, spans)
            per[name]["work_s"].append(time.perf_counter() - started)
            per[name]["der"].append(diarization_error_rate(
                reference, [(t.start_s, t.end_s, str(t.speaker)) for t in found]))
            per[name]["count"].append(len({t.speaker for t in found}))
    return {name: {"der_mean": round(float(np.mean(v["der"])), 4), "der_max": round(float(np.max(v["der"])), 4),
                   "speaker_count_correct": sum(c == speakers for c in v["count"]) / mixtures,
                   "x_realtime": round(audio_s / sum(v["work_s"]), 2)}
            for name, v in per.items()}


if __name__ == "__main__":
    main()
