"""The long benchmark corpus: hours of speech with pauses, noise and music in long files, with the
true speech spans recorded beside it (``_long_truth.json``)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from audiomill.testing import signals

LONG_TRUTH_NAME = "_long_truth.json"
LONG_SAMPLE_RATE = 16_000


def make_long_corpus(root: Path, hours: float, seed: int = 0, *, fmt: str = "flac",
                     unique_speech: bool = False, duplicate_rate: float = 0.05) -> list[Path]:
    """Write at least ``hours`` of mixed 16 kHz audio as 2-10 minute files, for benchmarks.

    Each file strings together runs of espeak sentences (from a pool of 30, synthesized once),
    pauses, white noise and music over a -70 dBFS noise floor. ``root/_long_truth.json`` lists each
    file's duration and per-sentence speech spans (seconds).

    ``unique_speech``: utterances are new random text each time instead (``speech_pool``), of which
    only ``duplicate_rate`` repeat an earlier one, so dedup finds a known, small share of
    duplicates (the fixed pool makes most segments duplicates).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if unique_speech:
        from audiomill.testing.speech_pool import UniqueSpeech

        next_utterance = UniqueSpeech(seed + 1, LONG_SAMPLE_RATE, duplicate_rate)
    else:
        pool = _sentence_pool()

        def next_utterance() -> tuple[np.ndarray, float, float]:
            return pool[int(rng.integers(len(pool)))]
    music = [signals.music_like(30.0, LONG_SAMPLE_RATE, seed=seed + i) for i in range(3)]
    noise = signals.white_noise(60.0, LONG_SAMPLE_RATE, level_dbfs=0.0, seed=seed)
    paths, truth, total_s = [], [], 0.0
    while total_s < hours * 3600:
        seconds = min(rng.uniform(120.0, 600.0), max(hours * 3600 - total_s, 60.0))
        audio, spans = _assemble_long(int(seconds * LONG_SAMPLE_RATE), next_utterance, music, noise, rng)
        path = signals.write_audio(root / f"long_{len(paths):04d}.{fmt}", audio, LONG_SAMPLE_RATE, fmt)
        paths.append(path)
        truth.append({"path": path.name, "duration_s": len(audio) / LONG_SAMPLE_RATE, "speech_spans": spans})
        total_s += len(audio) / LONG_SAMPLE_RATE
    body = {"seed": seed, "hours": hours, "unique_speech": unique_speech, "files": truth}
    (root / LONG_TRUTH_NAME).write_text(json.dumps(body) + "\n", encoding="utf-8")
    return paths


@functools.cache
def _sentence_pool() -> tuple[tuple[np.ndarray, float, float], ...]:
    """30 sentences at 16 kHz with their measured (first_s, last_s) bounds; synthesized once."""
    from audiomill.testing.corpus import EN, OTHER  # the demo corpus's sentences

    items = [(text, voice) for text in EN for voice in ("en-us", "en+f3", "en+m3")]
    items += [(text, lang) for lang, texts in OTHER.items() for text in texts]
    pool = []
    for text, voice in items:
        audio, sr = signals.espeak(text, voice)
        audio = signals.resample(audio, sr, LONG_SAMPLE_RATE)
        audio.flags.writeable = False
        pool.append((audio, *signals.trim_silence_bounds(audio, LONG_SAMPLE_RATE)))
    return tuple(pool)


def _assemble_long(n: int, next_utterance, music, noise, rng: np.random.Generator):
    """``n`` samples of speech runs, pauses, noise and music; returns (audio, speech spans in s)."""
    sr = LONG_SAMPLE_RATE
    pieces, spans, pos = [], [], 0
    while pos < n:
        choice = rng.choice(4, p=[0.55, 0.15, 0.15, 0.15])
        if choice == 0:
            for _ in range(int(rng.integers(1, 6))):
                audio, first_s, last_s = next_utterance()
                spans.append([round(pos / sr + first_s, 3), round(pos / sr + last_s, 3)])
                pieces += [audio, signals.silence(rng.uniform(0.2, 1.2), sr)]
                pos += len(audio) + len(pieces[-1])
            continue
        length = int(rng.uniform(*{1: (1.0, 5.0), 2: (2.0, 10.0), 3: (5.0, 20.0)}[int(choice)]) * sr)
        if choice == 1:
            piece = np.zeros(length, dtype=np.float32)
        elif choice == 2:
            start = int(rng.integers(len(noise) - length))
            piece = noise[start : start + length] * np.float32(10 ** (rng.uniform(-45, -25) / 20))
        else:
            clip = music[int(rng.integers(len(music)))]
            start = int(rng.integers(len(clip) - length + 1))
            piece = clip[start : start + length] * np.float32(10 ** (rng.uniform(-12, 0) / 20))
        pieces.append(piece)
        pos += length
    audio = np.concatenate(pieces)[:n]
    audio += rng.standard_normal(n, dtype=np.float32) * np.float32(10 ** (-70 / 20))
    spans = [[start, min(end, n / sr)] for start, end in spans if start < n / sr]
    return np.clip(audio, -1.0, 1.0), spans
