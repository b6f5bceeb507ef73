"""Log-mel spectrograms: the decoder's target and the vocoder's input.

100 frames per second (hop 160 samples at 16 kHz), so four mel frames per 25 Hz token. Magnitude
(not power) mel, natural log with a floor of 1e-5. The filterbank is faster-whisper's Slaney-style
one (the same shape librosa builds), so no extra dependency is needed.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from audiomill.models.tokenizer.semantic import MEL_HOP, MEL_PER_FRAME
from audiomill.schema import SAMPLE_RATE

LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class MelConfig:
    n_fft: int = 1024
    hop: int = MEL_HOP
    n_mels: int = 80

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@contextlib.contextmanager
def torch_threads(count: int = 1) -> Iterator[None]:
    """Run torch ops on ``count`` threads. Parallelism comes from workers (Ray actors); on a
    shared, busy machine two-thread torch spun 17x slower than one thread (speaker embedding)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@functools.cache
def mel_filters(n_fft: int, n_mels: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Slaney mel filterbank, 0 Hz .. Nyquist."""
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor.get_mel_filters(sample_rate, n_fft, n_mels).astype(np.float32)


def stft_magnitude(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(frames, n_fft // 2 + 1) |STFT| with a Hann window, centred frames (frame i at i * hop)."""
    import torch

    signal = torch.from_numpy(np.array(audio, np.float32))
    with torch_threads():
        spec = torch.stft(signal, n_fft, hop_length=hop, window=torch.hann_window(n_fft), center=True,
                          pad_mode="constant", return_complex=True)
        return spec.abs().T.numpy()


def log_mel(audio: np.ndarray, cfg: MelConfig = MelConfig()) -> np.ndarray:
    """(4 x 25 Hz frames, n_mels) float32 log-mel of a 16 kHz clip, aligned with its tokens."""
    frames = len(audio) // (cfg.hop * MEL_PER_FRAME) * MEL_PER_FRAME
    if frames == 0:
        return np.zeros((0, cfg.n_mels), np.float32)
    magnitude = stft_magnitude(audio, cfg.n_fft, cfg.hop)[:frames]
    mel = magnitude @ mel_filters(cfg.n_fft, cfg.n_mels).T
    return np.log(np.maximum(mel, LOG_FLOOR)).astype(np.float32)
