"""A trained speech / music / noise classifier for segments: ``q_speech_prob``.

Why: the hand-made tonal score (``q_music_score``) cannot tell reverberant speech from music. On
real recordings (``benchmarks/eval_set.py``) reverberant prompts score up to 0.46, above the
default limit, while real music-on-hold has a median of 0.24. This model is trained by the
project on generated material (``speech_music_data``), so no weights are downloaded or committed,
and it is measured on the real evaluation set.

Features are summary statistics of a 40-band log-mel spectrogram (25 ms / 10 ms). Level and
channel are removed: each band's mean is taken relative to the clip's mean. What is left:
- band shape and spread over time;
- spectral flux;
- syllable-rate (2-8 Hz) modulation of the band energies;
- spectral flatness;
- how often energy drops into pauses.
Speech has 4 Hz envelope modulation and pauses. Music has sustained harmonic bands. Noise is flat.
The classifier is multinomial logistic regression (L-BFGS, L2), deterministic for the same data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiomill.schema import SAMPLE_RATE

CLASSES = ("speech", "music", "noise")
FEATURE_VERSION = "logmel40-stats@1"
N_MELS = 40  # the bands, window and hop of ``speaker_encoder.power_mel``
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms: 100 frames per second
MIN_SAMPLES = N_FFT * 2
_MODULATION_BANDS = 4  # groups of mel bands whose envelope modulation is measured
WEIGHTS_FILE = "speech_music.npz"
CONFIG_FILE = "speech_music.json"


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(frames, 40) natural-log mel power of a 16 kHz clip: the speaker encoder's mel
    (``speaker_encoder.power_mel``, the same 25 ms / 10 ms / 40 bands as the constants above)."""
    from audiomill.models.speaker_encoder import power_mel

    return np.log(np.maximum(power_mel(audio), 1e-10)).astype(np.float32)


def features(audio: np.ndarray) -> np.ndarray:
    """Fixed-length feature vector of one clip (``feature_size()`` floats); NaN when too short."""
    audio = np.asarray(audio, np.float32)
    if audio.size < MIN_SAMPLES or not np.isfinite(audio).all() or not np.any(audio):
        return np.full(feature_size(), np.nan, np.float32)
    mel = log_mel(audio)
    band_mean = mel.mean(axis=0)
    frame_energy = np.log(np.maximum(np.exp(mel).sum(axis=1), 1e-10))
    loud = frame_energy.max()
    flux = np.abs(np.diff(mel, axis=0)).mean(axis=0) if len(mel) > 1 else np.zeros(N_MELS, np.float32)
    linear = np.exp(mel.astype(np.float64))
    flatness = np.exp(np.log(linear).mean(axis=1)) / np.maximum(linear.mean(axis=1), 1e-20)
    parts = [
        band_mean - band_mean.mean(),  # spectral shape, level removed
        mel.std(axis=0),  # how each band moves over time
        flux,
        _modulation(mel),
        [flatness.mean(), flatness.std()],
        [np.mean(frame_energy < loud - 20), np.mean(frame_energy < loud - 40)],  # pauses
        [frame_energy.std()],
    ]
    return np.concatenate([np.asarray(p, np.float32).ravel() for p in parts])


def _modulation(mel: np.ndarray) -> np.ndarray:
    """Per band group: share of the envelope's 0.5-20 Hz modulation energy at 2-8 Hz, plus the
    share at 0.5-2 Hz (speech: syllables at ~4 Hz; music: beats and sustained notes)."""
    out = []
    groups = np.array_split(np.arange(N_MELS), _MODULATION_BANDS)
    freqs = np.fft.rfftfreq(len(mel), d=HOP / SAMPLE_RATE)
    total_band = (freqs >= 0.5) & (freqs <= 20)
    for group in groups:
        envelope = mel[:, group].mean(axis=1)
        spectrum = np.abs(np.fft.rfft(envelope - envelope.mean())) ** 2
        total = spectrum[total_band].sum() + 1e-12
        out += [spectrum[(freqs >= 2) & (freqs <= 8)].sum() / total,
                spectrum[(freqs >= 0.5) & (freqs < 2)].sum() / total]
    return np.asarray(out, np.float32)


def feature_size() -> int:
    return 3 * N_MELS + 2 * _MODULATION_BANDS + 5


@dataclass
class SpeechMusicModel:
    """Standardisation + softmax regression over ``CLASSES``."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray  # (features + 1, classes), last row is the bias
    metrics: dict

    def probabilities(self, feats: np.ndarray) -> np.ndarray:
        """(rows, classes); rows whose features are NaN (too short, silent) get NaN."""
        feats = np.atleast_2d(np.asarray(feats, np.float64))
        bad = ~np.isfinite(feats).all(axis=1)
        x = np.nan_to_num((feats - self.mean) / self.std)
        logits = np.hstack([x, np.ones((len(x), 1))]) @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        probs[bad] = np.nan
        return probs

    def speech_probability(self, clips: list[np.ndarray]) -> np.ndarray:
        """P(speech) per clip (NaN where a clip is too short or silent to judge)."""
        if not clips:
            return np.zeros(0, np.float64)
        return self.probabilities(np.stack([features(c) for c in clips]))[:, 0]

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / WEIGHTS_FILE, mean=self.mean, std=self.std, weights=self.weights)
        (directory / CONFIG_FILE).write_text(json.dumps(
            {"features": FEATURE_VERSION, "classes": list(CLASSES), "metrics": self.metrics}, indent=1, sort_keys=True))

    @classmethod
    def load(cls, directory: str | Path) -> "SpeechMusicModel":
        directory = Path(directory)
        weights, config = directory / WEIGHTS_FILE, directory / CONFIG_FILE
        if not weights.is_file() or not config.is_file():
            raise FileNotFoundError(f"{directory} holds no speech/music model ({WEIGHTS_FILE} + {CONFIG_FILE}); "
                                    "train one with `audiomill models train-speech-music`")
        meta = json.loads(config.read_text())
        if meta.get("features") != FEATURE_VERSION:
            raise ValueError(f"speech/music model in {directory} uses features {meta.get('features')!r}, this "
                             f"audiomill computes {FEATURE_VERSION!r}; retrain it")
        with np.load(weights) as data:
            return cls(data["mean"], data["std"], data["weights"], meta.get("metrics", {}))


def fit(feats: np.ndarray, labels: np.ndarray, l2: float = 1e-2) -> SpeechMusicModel:
    """Softmax regression on standardised features; ``labels`` index ``CLASSES``."""
    from scipy.optimize import minimize

    keep = np.isfinite(feats).all(axis=1)
    x, y = np.asarray(feats[keep], np.float64), np.asarray(labels[keep])
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    x = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    k = len(CLASSES)
    onehot = np.eye(k)[y]
    counts = onehot.sum(axis=0)
    row_weight = (len(y) / (k * np.maximum(counts, 1)))[y]  # classes weigh the same

    def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(x.shape[1], k)
        logits = x @ w
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        value = -(row_weight * (onehot * logp).sum(axis=1)).mean() + l2 * (w[:-1] ** 2).sum()
        grad = x.T @ ((np.exp(logp) - onehot) * row_weight[:, None]) / len(y)
        grad[:-1] += 2 * l2 * w[:-1]
        return float(value), grad.ravel()

    result = minimize(loss, np.zeros(x.shape[1] * k), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    weights = result.x.reshape(x.shape[1], k)
    predicted = (x @ weights).argmax(axis=1)
    metrics = {"train_accuracy": float((predicted == y).mean()), "train_rows": int(len(y)),
               **{f"train_rows_{c}": int(n) for c, n in zip(CLASSES, counts)}}
    return SpeechMusicModel(mean, std, weights, metrics)
