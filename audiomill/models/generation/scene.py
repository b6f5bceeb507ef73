"""Acoustic scenes: noise of a named type mixed at a given SNR, and room reverberation.

Used twice: the seed set renders known scenes onto clean speech, and the generation model renders
the *annotated* scene onto its re-synthesis so the verifier can measure SNR/reverb on both sides.
Everything is deterministic given ``seed``. Audio is 16 kHz mono float32; SNR is speech power over
noise power in dB, speech power taken over frames within 30 dB of the loudest (pauses excluded).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.signal import fftconvolve, lfilter

logger = logging.getLogger(__name__)
SAMPLE_RATE = 16_000
ROOM_M = (6.0, 5.0, 3.0)


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n).astype(np.float32)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise (Kellet's filter on white noise)."""
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1, -2.494956002, 2.017265875, -0.522189400]
    return lfilter(b, a, rng.standard_normal(n + 2000))[2000:].astype(np.float32)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz and 6 decaying harmonics, plus a little hiss."""
    base = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n) / SAMPLE_RATE
    tone = sum(0.7 ** k * np.sin(2 * np.pi * base * (k + 1) * t + rng.uniform(0, 6.28)) for k in range(7))
    return (tone + 0.02 * rng.standard_normal(n)).astype(np.float32)


def music(n: int, rng: np.random.Generator) -> np.ndarray:
    """Tonal background: plucked chords changing every 0.5 s."""
    beat = SAMPLE_RATE // 2
    t = np.arange(beat) / SAMPLE_RATE
    envelope = np.exp(-4.0 * t)
    out = np.zeros(n + beat, np.float64)
    for start in range(0, n, beat):
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        chord = sum(np.sin(2 * np.pi * root * r * h * t) * 0.6 ** h
                    for r in (1.0, 2 ** (4 / 12), 2 ** (7 / 12)) for h in (1, 2, 3))
        out[start:start + beat] += chord * envelope
    return out[:n].astype(np.float32)


def babble(n: int, rng: np.random.Generator, voices: list[np.ndarray]) -> np.ndarray:
    """Several other talkers at once: random slices of ``voices`` summed (needs >= 1 voice)."""
    out = np.zeros(n, np.float32)
    for _ in range(4):
        voice = voices[int(rng.integers(len(voices)))]
        reps = np.tile(voice, int(np.ceil(n / max(voice.size, 1))) + 1)
        start = int(rng.integers(0, max(1, voice.size)))
        out += reps[start:start + n]
    return out


def make_noise(kind: str, n: int, seed: int, voices: list[np.ndarray] | None = None) -> np.ndarray:
    """``n`` samples of noise ``kind`` (white, pink, babble, hum, music) at unit RMS."""
    rng = np.random.default_rng(seed)
    if kind == "babble":
        if not voices:
            raise ValueError("babble noise needs speech to mix (voices)")
        noise = babble(n, rng, voices)
    else:
        makers = {"white": white, "pink": pink, "hum": hum, "music": music}
        if kind not in makers:
            raise ValueError(f"unknown noise type {kind!r}; one of {sorted(makers) + ['babble']}")
        noise = makers[kind](n, rng)
    return (noise / max(float(np.sqrt(np.mean(noise.astype(np.float64) ** 2))), 1e-12)).astype(np.float32)


def active_power(speech: np.ndarray, range_db: float = 30.0) -> float:
    """Mean power of 20 ms frames within ``range_db`` of the loudest frame (pauses excluded)."""
    frame = SAMPLE_RATE // 50
    count = speech.size // frame
    if count == 0:
        return float(np.mean(speech.astype(np.float64) ** 2)) if speech.size else 0.0
    power = np.mean(speech[:count * frame].astype(np.float64).reshape(count, frame) ** 2, axis=1)
    loud = power > power.max() * 10 ** (-range_db / 10)
    return float(power[loud].mean())


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + g * noise`` with ``g`` making active speech power / noise power = ``snr_db``."""
    noise = noise[:speech.size]
    gain = np.sqrt(active_power(speech) / max(float(np.mean(noise.astype(np.float64) ** 2)), 1e-20)
                   / 10 ** (snr_db / 10))
    return (speech + np.float32(gain) * noise).astype(np.float32)


def room_impulse(rt60_s: float, seed: int) -> np.ndarray:
    """A room impulse response with reverberation time ``rt60_s``: pyroomacoustics' image method
    in a 6 x 5 x 3 m room when installed, else exponentially decaying noise (same RT60)."""
    rng = np.random.default_rng(seed)
    try:
        import pyroomacoustics as pra
    except ImportError:
        logger.info("pyroomacoustics not installed: synthetic exponential-decay RIR")
        return synthetic_impulse(rt60_s, rng)
    absorption, max_order = pra.inverse_sabine(rt60_s, list(ROOM_M))
    room = pra.ShoeBox(list(ROOM_M), fs=SAMPLE_RATE, materials=pra.Material(absorption),
                       max_order=min(max_order, 20))
    room.add_source([rng.uniform(1, 2.5), rng.uniform(1, 4), 1.5])
    room.add_microphone([rng.uniform(3.5, 5), rng.uniform(1, 4), 1.4])
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    return (rir / np.abs(rir).max()).astype(np.float32)


def synthetic_impulse(rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    n = int(rt60_s * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    rir = rng.standard_normal(n) * np.exp(-6.91 * t / rt60_s)
    rir[0] = 1.0 / 0.3
    return (rir / np.abs(rir).max()).astype(np.float32)


def reverberate(speech: np.ndarray, rt60_s: float, seed: int) -> np.ndarray:
    """``speech`` convolved with ``room_impulse``, trimmed to its length, RMS kept."""
    wet = fftconvolve(speech, room_impulse(rt60_s, seed))[:speech.size]
    scale = np.sqrt(np.mean(speech.astype(np.float64) ** 2) / max(np.mean(wet ** 2), 1e-20))
    return np.clip(wet * scale, -1, 1).astype(np.float32)


def render_scene(speech: np.ndarray, noise_type: str, snr_db: float | None, rt60_s: float,
                 seed: int, voices: list[np.ndarray] | None = None) -> np.ndarray:
    """Reverberation (``rt60_s`` > 0), then noise (``noise_type`` != none at ``snr_db``), then
    peak-normalised to -1 dBFS if it would clip."""
    out = reverberate(speech, rt60_s, seed) if rt60_s > 0 else speech.astype(np.float32)
    if noise_type != "none" and snr_db is not None:
        out = mix_at_snr(out, make_noise(noise_type, out.size, seed + 1, voices), snr_db)
    peak = float(np.abs(out).max(initial=0.0))
    return (out * np.float32(0.89 / peak)).astype(np.float32) if peak > 0.89 else out
