"""Shared fixtures for pipeline tests: small generated audio files in tmp_path, one espeak clip."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from audiomill.schema import SAMPLE_RATE
from audiomill.testing.signals import (espeak, resample, silence, sine, trim_silence_bounds,
                                       white_noise, write_audio)

SPEECH_PAD_S = 1.0


@dataclass(frozen=True)
class SpeechClip:
    """espeak-ng speech at 16 kHz with SPEECH_PAD_S of digital silence on both sides."""

    audio: np.ndarray
    speech_start_s: float  # where the speech itself starts and ends (10 ms precision)
    speech_end_s: float

    @property
    def duration_s(self) -> float:
        return self.audio.size / SAMPLE_RATE


@pytest.fixture
def write_tone(tmp_path: Path) -> Callable[..., Path]:
    """Write a -20 dBFS 440 Hz tone; ``name`` is relative to tmp_path, its suffix picks the format."""

    def write(name: str, seconds: float = 0.5, sr: int = 16_000) -> Path:
        return write_audio(tmp_path / name, sine(440.0, seconds, sr), sr)

    return write


@pytest.fixture(scope="session")
def speech_clip() -> SpeechClip:
    audio, sr = espeak("The quick brown fox jumps over the lazy dog near the river bank.", "en")
    speech = resample(audio, sr, SAMPLE_RATE)
    pad = silence(SPEECH_PAD_S, SAMPLE_RATE)
    padded = np.concatenate([pad, speech, pad]).astype(np.float32)
    start_s, end_s = trim_silence_bounds(padded, SAMPLE_RATE)
    return SpeechClip(padded, start_s, end_s)


@pytest.fixture
def write_speech(tmp_path: Path, speech_clip: SpeechClip) -> Callable[[str], Path]:
    def write(name: str) -> Path:
        return write_audio(tmp_path / name, speech_clip.audio, SAMPLE_RATE)

    return write


@pytest.fixture
def write_silence(tmp_path: Path) -> Callable[..., Path]:
    def write(name: str, seconds: float = 3.0) -> Path:
        return write_audio(tmp_path / name, silence(seconds, SAMPLE_RATE), SAMPLE_RATE)

    return write


@pytest.fixture
def write_noise(tmp_path: Path) -> Callable[..., Path]:
    def write(name: str, seconds: float = 3.0) -> Path:
        return write_audio(tmp_path / name, white_noise(seconds, SAMPLE_RATE, level_dbfs=-25.0),
                           SAMPLE_RATE)

    return write
