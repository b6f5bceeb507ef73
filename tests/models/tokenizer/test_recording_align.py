"""Phones placed on a recording by synthesis + DTW follow its own timing, not a uniform stretch."""

from __future__ import annotations

import numpy as np

from audiomill.models.tokenizer.espeak_align import AlignedSpeech, synthesize
from audiomill.models.tokenizer.compare import dtw_path
from audiomill.models.tokenizer.recording_align import align_recording

SR = 16_000


def _with_pauses(speech: AlignedSpeech, lead_s: float, pause_s: float) -> tuple[AlignedSpeech, np.ndarray]:
    """``speech`` after ``lead_s`` of silence, with a ``pause_s`` pause before its middle phone,
    and a mask of the 25 Hz frames that hold speech (which phone a pause "belongs" to is moot:
    DTW gives it to the next stop's closure, a convention to its predecessor)."""
    middle = len(speech.phones) // 2
    cut = int(speech.starts_s[middle] * SR)
    audio = np.concatenate([np.zeros(int(lead_s * SR), np.float32), speech.audio[:cut],
                            np.zeros(int(pause_s * SR), np.float32), speech.audio[cut:]])
    starts = tuple(t + lead_s + (pause_s if i >= middle else 0.0) for i, t in enumerate(speech.starts_s))
    centres = (np.arange(len(audio) // 640) + 0.5) / 25
    pause_at = lead_s + cut / SR
    speaking = (centres >= lead_s) & ((centres < pause_at) | (centres >= pause_at + pause_s))
    return AlignedSpeech(audio, speech.phones, starts), speaking


def _agreement(a: AlignedSpeech, b: AlignedSpeech, frames: np.ndarray) -> float:
    same = np.array([x == y for x, y in zip(a.frame_labels(25, len(frames)), b.frame_labels(25, len(frames)))])
    return float(same[frames].mean())


def test_dtw_path_is_monotone_and_finds_the_stretch():
    a = np.array([0.0, 1.0, 2.0, 3.0])
    b = np.array([0.0, 0.0, 1.0, 2.0, 2.0, 3.0])
    path = dtw_path(np.abs(a[:, None] - b[None, :]))
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (3, 5)
    assert np.all(np.diff(path, axis=0) >= 0)
    assert all(a[i] == b[j] for i, j in path)  # a zero-cost path exists and is the one found


def test_phones_follow_pauses_the_synthesis_does_not_have():
    text = "Help the woman get back to her feet."
    target, frames = _with_pauses(synthesize(text, "en+f3"), lead_s=0.3, pause_s=0.5)  # another voice
    aligned = align_recording(target.audio, text, "en-us")
    reference = synthesize(text, "en-us")
    scale = len(target.audio) / len(reference.audio)
    uniform = AlignedSpeech(target.audio, reference.phones, tuple(t * scale for t in reference.starts_s))
    dtw_agree, uniform_agree = _agreement(aligned, target, frames), _agreement(uniform, target, frames)
    assert dtw_agree >= 0.65, dtw_agree
    assert dtw_agree >= uniform_agree + 0.15, (dtw_agree, uniform_agree)
