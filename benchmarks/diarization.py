"""DER and speed of the fallback diarizer on generated espeak conversations.

For each speaker count (1, 2, 3) it generates ``--mixtures`` conversations of ``--turns`` turns
(``audiomill.testing.mixtures``: voices en+m3, en+f3, en+m7 by default; 2-5 s turns, 0.3-1 s
gaps) and scores DER with a 0.25 s collar under two kinds of speech spans:

- ``oracle``: the reference turns padded by 0.1 s (isolates speaker clustering);
- ``vad``: silero-vad spans as the clean pipeline makes them (``VadConfig()`` defaults), so
  VAD misses/false alarms and turns merged across short gaps count too.

Speed is audio seconds / diarizer seconds (feature extraction + clustering, one thread-ish numpy),
VAD excluded. Usage: python benchmarks/diarization.py [--mixtures 10] [--turns 12] [--voices a,b,c]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from audiomill.config import VadConfig
from audiomill.models.diarization import FallbackDiarizer
from audiomill.models.vad import FRAME_S, SileroVad
from audiomill.models.speech_spans import speech_spans
from audiomill.schema import SAMPLE_RATE
from audiomill.testing.mixtures import VOICES, conversation, diarization_error_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixtures", type=int, default=10)
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--voices", default=",".join(VOICES))
    args = parser.parse_args()
    voices = tuple(args.voices.split(","))
    vad = SileroVad(threads=1)
    diarizer = FallbackDiarizer()
    results = {}
    for speakers in (1, 2, 3):
        ders: dict[str, list[float]] = {"oracle": [], "vad": []}
        counts: list[int] = []
        audio_s = work_s = 0.0
        for seed in range(args.mixtures):
            conv = conversation(speakers, args.turns, seed=1000 + seed, voices=voices)
            reference = [(t.start_s, t.end_s, t.speaker) for t in conv.turns]
            (probs,) = vad.speech_probabilities_batch([conv.audio])
            found = speech_spans(probs, conv.audio, VadConfig(), frame_s=FRAME_S)
            span_sets = {"oracle": [(t.start_s - 0.1, t.end_s + 0.1) for t in conv.turns],
                         "vad": list(zip(found.starts_s.tolist(), found.ends_s.tolist()))}
            for kind, spans in span_sets.items():
                started = time.perf_counter()
                turns = diarizer.diarize(conv.audio, spans)
                work_s += time.perf_counter() - started
                audio_s += conv.audio.size / SAMPLE_RATE
                hypothesis = [(t.start_s, t.end_s, str(t.speaker)) for t in turns]
                ders[kind].append(diarization_error_rate(reference, hypothesis))
                if kind == "vad":
                    counts.append(len({t.speaker for t in turns}))
        results[speakers] = {
            **{f"der_{k}_mean": round(float(np.mean(v)), 4) for k, v in ders.items()},
            **{f"der_{k}_max": round(float(np.max(v)), 4) for k, v in ders.items()},
            "speaker_count_correct": sum(c == speakers for c in counts) / len(counts),
            "x_realtime": round(audio_s / work_s, 1),
        }
        print(speakers, "speakers:", json.dumps(results[speakers]), flush=True)
    print(json.dumps({"mixtures": args.mixtures, "turns": args.turns, "voices": voices,
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
