"""Multi-speaker conversations from espeak-ng voices, with ground-truth turns, and DER scoring.

Shared by the diarization tests and ``benchmarks/diarization.py``. A conversation alternates
speakers (never the same speaker twice in a row), each turn 2-5 s of speech separated by
0.3-1 s gaps of digital silence; turn bounds are where the speech itself starts and ends (10 ms
precision), not where espeak's own padding does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from audiomill.schema import SAMPLE_RATE
from audiomill.testing.signals import espeak, resample, silence, trim_silence_bounds

VOICES = ("en+m3", "en+f3", "en+m7")
"""Default voices: two male variants and one female; the first n speak in an n-speaker mix."""

_WORDS = ("the morning train was late again so we walked along the river past the old mill "
          "where children played near water and birds sang above green fields while clouds "
          "moved slowly over distant hills people talked about weather prices markets music "
          "gardens books and the long winter that nobody could forget before spring arrived").split()


@dataclass(frozen=True)
class Turn:
    """One speaker's speech from ``start_s`` to ``end_s`` (seconds from the start of the audio)."""

    speaker: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Conversation:
    """Mono float32 audio at SAMPLE_RATE and its reference turns, in time order."""

    audio: np.ndarray
    turns: tuple[Turn, ...]

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(sorted({t.speaker for t in self.turns}))


def conversation(num_speakers: int, num_turns: int = 10, seed: int = 0,
                 voices: tuple[str, ...] = VOICES, turn_s: tuple[float, float] = (2.0, 5.0),
                 gap_s: tuple[float, float] = (0.3, 1.0), lead_s: float = 0.5) -> Conversation:
    """A ``num_speakers``-voice conversation of ``num_turns`` turns; deterministic per ``seed``."""
    if not 1 <= num_speakers <= len(voices):
        raise ValueError(f"num_speakers must be 1..{len(voices)} (one voice each), got {num_speakers}")
    rng = np.random.default_rng(seed)
    pieces = [silence(lead_s, SAMPLE_RATE)]
    position_s = lead_s
    turns = []
    speaker = int(rng.integers(num_speakers))
    for index in range(num_turns):
        if index and num_speakers > 1:
            speaker = (speaker + int(rng.integers(1, num_speakers))) % num_speakers
        speech = _utterance(voices[speaker], float(rng.uniform(*turn_s)), rng)
        turns.append(Turn(voices[speaker], round(position_s, 3), round(position_s + speech.size / SAMPLE_RATE, 3)))
        gap = silence(float(rng.uniform(*gap_s)), SAMPLE_RATE)
        pieces += [speech, gap]
        position_s += (speech.size + gap.size) / SAMPLE_RATE
    return Conversation(np.concatenate(pieces).astype(np.float32), tuple(turns))


def _utterance(voice: str, target_s: float, rng: np.random.Generator) -> np.ndarray:
    """About ``target_s`` seconds of speech (espeak ~3 words/s), trimmed to the speech itself."""
    words = rng.choice(_WORDS, size=max(3, int(round(target_s * 3.0))))
    audio, sr = espeak(" ".join(words), voice)
    audio = resample(audio, sr, SAMPLE_RATE)
    start_s, end_s = trim_silence_bounds(audio, SAMPLE_RATE)
    end_s = min(end_s, start_s + target_s + 0.5)
    return audio[int(start_s * SAMPLE_RATE): int(end_s * SAMPLE_RATE)]


def diarization_error_rate(reference: list[tuple[float, float, str]],
                           hypothesis: list[tuple[float, float, str]],
                           collar_s: float = 0.25, step_s: float = 0.01) -> float:
    """DER = (missed + false alarm + confusion) / reference speech, on a ``step_s`` grid.

    Turns are (start_s, end_s, label). Hypothesis labels map one-to-one to reference labels by the
    assignment that maximises matched time (Hungarian); ``collar_s`` on each side of every
    reference boundary is not scored. Overlapping speech counts each speaker (NIST convention).
    """
    end_s = max([e for _, e, _ in reference + hypothesis] + [0.0])
    n = int(np.ceil(end_s / step_s)) + 1
    ref_labels = sorted({r for _, _, r in reference})
    hyp_labels = sorted({h for _, _, h in hypothesis})
    ref = _activity(reference, ref_labels, n, step_s)
    hyp = _activity(hypothesis, hyp_labels, n, step_s)
    scored = np.ones(n, dtype=bool)
    for start, stop, _ in reference:
        for edge in (start, stop):
            scored[max(0, int((edge - collar_s) / step_s)): int(np.ceil((edge + collar_s) / step_s))] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    total = n_ref.sum()
    if total == 0:
        return 0.0
    overlap = ref.astype(np.int64) @ hyp.T.astype(np.int64)  # frames each (ref, hyp) pair share
    rows, cols = linear_sum_assignment(-overlap) if overlap.size else ([], [])
    correct = np.zeros(ref.shape[1], dtype=np.int64)
    for r, h in zip(rows, cols):
        correct += ref[r] & hyp[h]
    errors = np.maximum(n_ref, n_hyp) - correct  # missed + false alarm + confusion per frame
    return float(errors.sum() / total)


def _activity(turns: list[tuple[float, float, str]], labels: list[str], n: int, step_s: float) -> np.ndarray:
    active = np.zeros((len(labels), n), dtype=bool)
    for start, stop, label in turns:
        active[labels.index(label), int(round(start / step_s)): int(round(stop / step_s))] = True
    return active


def longest_foreign_stretch(reference: list[tuple[float, float, str]],
                            hypothesis: list[tuple[float, float, str]], step_s: float = 0.01) -> float:
    """Seconds of the longest stretch inside one hypothesis turn where only other reference
    speakers talk than the one that speaks most of that turn: how far a turn runs across a
    reference speaker change. Pauses inside the stretch count; overlapped speech does not."""
    end_s = max([e for _, e, _ in reference + hypothesis] + [0.0])
    n = int(np.ceil(end_s / step_s)) + 1
    labels = sorted({r for _, _, r in reference})
    ref = _activity(reference, labels, n, step_s)
    longest = 0.0
    for start, stop, _ in hypothesis:
        lo, hi = int(round(start / step_s)), int(round(stop / step_s))
        inside = ref[:, lo:hi]
        if inside.shape[1] == 0 or not inside.any():
            continue
        own = inside[int(np.argmax(inside.sum(axis=1)))]
        foreign = np.flatnonzero(inside.any(axis=0) & ~own)
        if foreign.size == 0:
            continue
        own_before = np.cumsum(own)[foreign]  # stretches are separated by the own speaker
        breaks = np.flatnonzero(np.diff(own_before)) + 1
        for run in np.split(foreign, breaks):
            longest = max(longest, float(run[-1] - run[0] + 1) * step_s)
    return round(longest, 3)
