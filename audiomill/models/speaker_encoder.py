"""Speaker embeddings from Resemblyzer's pretrained d-vector encoder (weights from its PyPI package).

The network (3-layer LSTM over 40 mel bands, linear + ReLU, L2 norm; 256 dims) and its
preprocessing (volume normalised up to -30 dBFS, 25 ms / 10 ms power mel, 1.6 s partials at 1.3
per second, embeddings averaged and renormalised) follow ``resemblyzer.VoiceEncoder``. Only the
weights file ``pretrained.pt`` is read from the installed package: importing ``resemblyzer``
itself needs librosa and webrtcvad, which this project does not otherwise use. Resemblyzer's
webrtcvad silence trimming is not applied (segments here are already VAD-cut).

Shared by the tokenizer, the understanding model and the d-vector diarizer
(``models/dvector_diarizer.py``), which embeds many windows of one source in a batch through
``power_mel`` + ``embed_windows``.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from audiomill.models.threads import one_blas_thread
from audiomill.models.tokenizer.mel import mel_filters, stft_magnitude, torch_threads

EMBEDDING_DIM = 256
_N_FFT, _HOP, _MELS = 400, 160, 40
PARTIAL_FRAMES = 160
_RATE, _MIN_COVERAGE = 1.3, 0.75
_TARGET_DBFS = -30.0


def weights_path() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the speaker encoder's weights ship in the PyPI package resemblyzer: "
                                "pip install --no-deps resemblyzer==0.1.4")
    path = Path(list(spec.submodule_search_locations)[0], "pretrained.pt")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall resemblyzer==0.1.4")
    return path


class SpeakerEncoder:
    """``embed(audio)``: a unit-norm 256-d float32 d-vector for a 16 kHz clip."""

    def __init__(self) -> None:
        import torch

        self._lstm, self._linear = encoder_modules()
        load_encoder_weights(self._lstm, self._linear)
        self._lstm.eval()
        self._linear.eval()

    def embed(self, audio: np.ndarray) -> np.ndarray:
        wav = normalize_volume(np.asarray(audio, np.float32))
        starts, stop = _partial_starts(len(wav))
        mel = power_mel(np.pad(wav, (0, max(0, stop * _HOP - len(wav)))))
        embeds = self.embed_windows(mel, np.array(starts), np.full(len(starts), PARTIAL_FRAMES))
        mean = embeds.mean(axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-9)).astype(np.float32)

    def embed_windows(self, mel: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                      batch: int = 256) -> np.ndarray:
        """(windows, 256) unit-norm d-vectors of ``mel[start:start + length]`` (mel frames, 10 ms).

        Windows shorter than the longest run as packed sequences, so padding never reaches the
        LSTM state. Batched ``batch`` windows at a time on one torch thread.
        """
        import torch
        from torch.nn.utils.rnn import pack_padded_sequence

        out = np.zeros((len(starts), EMBEDDING_DIM), np.float32)
        for first in range(0, len(starts), batch):
            rows = range(first, min(first + batch, len(starts)))
            longest = int(max(lengths[r] for r in rows))
            chunk = np.zeros((len(rows), longest, _MELS), np.float32)
            for k, r in enumerate(rows):
                chunk[k, :lengths[r]] = mel[starts[r]: starts[r] + lengths[r]]
            with torch.no_grad(), torch_threads():
                packed = pack_padded_sequence(torch.from_numpy(chunk),
                                              torch.as_tensor(lengths[first:rows.stop]),
                                              batch_first=True, enforce_sorted=False)
                _, (hidden, _) = self._lstm(packed)
                raw = torch.relu(self._linear(hidden[-1]))
                out[first:rows.stop] = (raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-9)).numpy()
        return out


@one_blas_thread
def power_mel(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) power mel of 16 kHz ``wav``, frame i centred at sample i * 160 (the encoder's input).

    One BLAS thread: the filterbank matmul rounds differently on N threads, so embeddings (and the
    round tables built on them) would differ between a Ray actor (1 thread) and the driver."""
    power = stft_magnitude(np.asarray(wav, np.float32), _N_FFT, _HOP) ** 2
    return (power @ _mel_bank().T).astype(np.float32)


def encoder_modules() -> tuple["torch.nn.LSTM", "torch.nn.Linear"]:
    """The encoder's untrained layers (3-layer LSTM over 40 mels, linear to 256 dims)."""
    import torch

    return torch.nn.LSTM(_MELS, 256, 3, batch_first=True), torch.nn.Linear(256, EMBEDDING_DIM)


def load_encoder_weights(lstm: "torch.nn.LSTM", linear: "torch.nn.Linear") -> None:
    """Copy Resemblyzer's pretrained weights (its package's ``pretrained.pt``) into the layers."""
    import torch

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)["model_state"]
    lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
    linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})



@functools.cache
def _mel_bank() -> np.ndarray:
    return mel_filters(_N_FFT, _MELS)


def normalize_volume(wav: np.ndarray, rms: float | None = None) -> np.ndarray:
    """Raise ``wav`` to -30 dBFS RMS (never lower it); ``rms`` defaults to ``wav``'s own."""
    if rms is None:
        rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) if wav.size else 0.0
    if rms <= 0.0:
        return wav
    gain_db = _TARGET_DBFS - 20.0 * np.log10(rms)
    return wav * np.float32(10 ** (gain_db / 20)) if gain_db > 0 else wav


def _partial_starts(num_samples: int) -> tuple[list[int], int]:
    """Mel-frame starts of the 1.6 s partials and the frame count they need (Resemblyzer's rule)."""
    n_frames = int(np.ceil((num_samples + 1) / _HOP))
    step = int(np.round((16_000 / _RATE) / _HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    coverage = (num_samples - starts[-1] * _HOP) / (PARTIAL_FRAMES * _HOP)
    if coverage < _MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts, starts[-1] + PARTIAL_FRAMES


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
