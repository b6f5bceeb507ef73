"""DER of the embedded diarizers (old spectral vs new d-vector default) per speaker count and gender
mix, plus a real two-speaker recording, scored with ``pyannote.metrics``.

Generated conversations (``audiomill.testing.mixtures``; 2-5 s turns, 0.3-1 s gaps) for 1, 2 and 3
speakers and four voice sets (the first n voices speak in an n-speaker talk):

- ``male``: en+m3, en+m7, en+m2;  ``female``: en+f3, en+f5, en+f1;  ``mixed``: en+m3, en+f3, en+m7;
- ``male-close``: en+m3, en+m1, en+m7 (en+m1 and en+m3 are nearly one voice to the encoder:
  their mean d-vectors lie 0.30 apart, as far as two halves of one voice).

Spans: ``oracle`` (reference turns padded by 0.1 s: clustering alone) and ``vad`` (silero-vad as
the clean pipeline runs it). DER from ``pyannote.metrics.DiarizationErrorRate`` with a 0.25 s
collar on each side of every reference boundary (``collar=0.5`` in pyannote's convention) and
with none. ``count ok`` = share of talks whose speaker count is right (VAD spans). x realtime =
audio seconds / diarizer seconds (VAD excluded) over the whole run, both span kinds.

Real: pyannote.audio 4.0.7's ``sample.wav`` + ``sample.rttm`` (fetched from the wheel, see
``audiomill.testing.real_conversation``), VAD spans; "foreign s" is the longest stretch inside one
diarizer turn (and inside one pipeline segment after ``split_spans_at_turns``, min turn 1 s) where
only the other reference speaker talks.

``--calibrate`` sweeps the d-vector threshold on seeds 500.. (never used by tests or the table,
which use 1000..) with oracle spans and prints mean DER per threshold.

Usage: python benchmarks/diarization.py [--mixtures 3] [--turns 10] [--calibrate 0.28,0.33,0.38]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

from audiomill.config import VadConfig
from audiomill.models.diarization import FallbackDiarizer, split_spans_at_turns
from audiomill.models.dvector_diarizer import DvectorDiarizer, DvectorOptions
from audiomill.models.speech_spans import speech_spans
from audiomill.models.vad import FRAME_S, SileroVad
from audiomill.schema import SAMPLE_RATE
from audiomill.testing.mixtures import Conversation, conversation, diarization_error_rate, longest_foreign_stretch
from audiomill.testing.real_conversation import pyannote_sample

MIXES = {"male": ("en+m3", "en+m7", "en+m2"), "female": ("en+f3", "en+f5", "en+f1"),
         "mixed": ("en+m3", "en+f3", "en+m7"), "male-close": ("en+m3", "en+m1", "en+m7")}
Labeled = list[tuple[float, float, str]]


def pyannote_der(reference: Labeled, hypothesis: Labeled, collar_s: float) -> float:
    """DER from pyannote.metrics; ``collar_s`` on each side of a reference boundary."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    warnings.filterwarnings("ignore", message="'uem' was approximated")  # extent = ref + hyp
    ref, hyp = Annotation(), Annotation()
    for k, (a, b, label) in enumerate(reference):
        ref[Segment(a, b), k] = label
    for k, (a, b, label) in enumerate(hypothesis):
        hyp[Segment(a, b), k] = f"h{label}"
    return float(DiarizationErrorRate(collar=2 * collar_s, skip_overlap=False)(ref, hyp))


def _labeled(turns) -> Labeled:
    return [(t.start_s, t.end_s, str(t.speaker)) for t in turns]


def _vad_spans(vad: SileroVad, audio: np.ndarray) -> list[tuple[float, float]]:
    (probs,) = vad.speech_probabilities_batch([audio])
    found = speech_spans(probs, audio, VadConfig(), frame_s=FRAME_S)
    return list(zip(found.starts_s.tolist(), found.ends_s.tolist()))


def _score(diarizer, conv: Conversation, spans: list[tuple[float, float]]) -> dict:
    reference = [(t.start_s, t.end_s, t.speaker) for t in conv.turns]
    started = time.perf_counter()
    turns = diarizer.diarize(conv.audio, spans)
    seconds = time.perf_counter() - started
    hypothesis = _labeled(turns)
    return {"der": pyannote_der(reference, hypothesis, 0.25), "der0": pyannote_der(reference, hypothesis, 0.0),
            "speakers": len({t.speaker for t in turns}), "seconds": seconds, "turns": turns,
            "foreign_s": longest_foreign_stretch(reference, hypothesis)}


def generated_table(diarizers: dict, vad: SileroVad, mixtures: int, turns: int) -> list[dict]:
    rows, clock = [], {name: [0.0, 0.0] for name in diarizers}
    for mix, voices in MIXES.items():
        for speakers in (1, 2, 3):
            if speakers == 1 and mix not in ("male", "female"):
                continue  # one voice: only its gender matters
            cells: dict[tuple[str, str], list[dict]] = {}
            for seed in range(mixtures):
                conv = conversation(speakers, turns, seed=1000 + seed, voices=voices)
                spans = {"oracle": [(t.start_s - 0.1, t.end_s + 0.1) for t in conv.turns],
                         "vad": _vad_spans(vad, conv.audio)}
                for name, diarizer in diarizers.items():
                    for kind, chosen in spans.items():
                        result = _score(diarizer, conv, chosen)
                        cells.setdefault((name, kind), []).append(result)
                        clock[name][0] += conv.audio.size / SAMPLE_RATE
                        clock[name][1] += result["seconds"]
            for (name, kind), results in cells.items():
                rows.append({"mix": mix, "speakers": speakers, "diarizer": name, "spans": kind,
                             "der": float(np.mean([r["der"] for r in results])),
                             "der_max": float(np.max([r["der"] for r in results])),
                             "der0": float(np.mean([r["der0"] for r in results])),
                             "count_ok": float(np.mean([r["speakers"] == speakers for r in results]))})
            print(json.dumps(rows[-4:]), flush=True)
    for name, (audio_s, work_s) in clock.items():
        print(f"{name}: {audio_s / work_s:.1f}x realtime ({audio_s:.0f} s of audio)")
    return rows


def real_rows(diarizers: dict, vad: SileroVad) -> list[dict]:
    conv = pyannote_sample()
    reference = [(t.start_s, t.end_s, t.speaker) for t in conv.turns]
    spans = _vad_spans(vad, conv.audio)
    rows = []
    for name, diarizer in diarizers.items():
        result = _score(diarizer, conv, spans)
        cut = split_spans_at_turns([a for a, _ in spans], [b for _, b in spans], result["turns"], 1.0)
        segments = [(a, b, str(s)) for a, b, s in zip(cut.starts_s, cut.ends_s, cut.speakers)]
        rows.append({"diarizer": name, "vad_spans": len(spans), "der": result["der"], "der0": result["der0"],
                     "speakers": result["speakers"], "foreign_s_turns": result["foreign_s"],
                     "foreign_s_segments": longest_foreign_stretch(reference, segments),
                     "longest_segment_s": round(max(b - a for a, b, _ in segments), 2),
                     "x_realtime": round(conv.audio.size / SAMPLE_RATE / result["seconds"], 1)})
    return rows


def calibrate(thresholds: list[float], turns: int, seeds: int = 2) -> None:
    """Mean DER (oracle spans, collar 0.25 s) per threshold on seeds 500.. of every mix and count."""
    talks = [conversation(n, turns, seed=500 + s, voices=v) for v in MIXES.values() if v != MIXES["male-close"]
             for n in (1, 2, 3) for s in range(seeds)]
    for threshold in thresholds:
        diarizer = DvectorDiarizer(DvectorOptions(threshold=threshold))
        results = [_score(diarizer, c, [(t.start_s - 0.1, t.end_s + 0.1) for t in c.turns]) for c in talks]
        ok = np.mean([r["speakers"] == len(c.speakers) for r, c in zip(results, talks)])
        print(f"threshold {threshold}: mean DER {np.mean([r['der'] for r in results]):.3f}, count ok {ok:.2f}",
              flush=True)


def print_markdown(rows: list[dict], real: list[dict]) -> None:
    print("\n| mix | speakers | spans | old DER (max) | new DER (max) | old / new DER no collar "
          "| old / new count ok |\n|---|---|---|---|---|---|---|")
    for row in rows:
        if row["diarizer"] != "new":
            continue
        old = next(r for r in rows if r["diarizer"] == "old" and all(
            r[k] == row[k] for k in ("mix", "speakers", "spans")))
        print(f"| {row['mix']} | {row['speakers']} | {row['spans']} | {old['der']:.3f} ({old['der_max']:.2f}) "
              f"| {row['der']:.3f} ({row['der_max']:.2f}) | {old['der0']:.3f} / {row['der0']:.3f} "
              f"| {old['count_ok']:.2f} / {row['count_ok']:.2f} |")
    print("\n| real (pyannote sample) | DER | DER no collar | speakers | foreign s in a turn "
          "| in a segment | longest segment s | x realtime |\n|---|---|---|---|---|---|---|---|")
    for r in real:
        print(f"| {r['diarizer']} | {r['der']:.3f} | {r['der0']:.3f} | {r['speakers']} | {r['foreign_s_turns']} "
              f"| {r['foreign_s_segments']} | {r['longest_segment_s']} | {r['x_realtime']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixtures", type=int, default=3)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--calibrate", default="", help="comma-separated thresholds to sweep instead")
    args = parser.parse_args()
    if args.calibrate:
        calibrate([float(x) for x in args.calibrate.split(",")], args.turns)
        return
    conv = conversation(2, 6, seed=999, voices=MIXES["mixed"])
    reference = [(t.start_s, t.end_s, t.speaker) for t in conv.turns]
    hypothesis = _labeled(FallbackDiarizer().diarize(conv.audio))
    print("cross-check DER (collar 0.25 s): testing.mixtures", round(diarization_error_rate(reference, hypothesis), 4),
          "pyannote.metrics", round(pyannote_der(reference, hypothesis, 0.25), 4))
    diarizers = {"old": FallbackDiarizer(), "new": DvectorDiarizer()}
    vad = SileroVad(threads=1)
    real = real_rows(diarizers, vad)
    print(json.dumps(real), flush=True)
    rows = generated_table(diarizers, vad, args.mixtures, args.turns)
    print_markdown(rows, real)


if __name__ == "__main__":
    main()
