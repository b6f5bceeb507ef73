"""Generated training material for the speech / music / noise classifier (``speech_music``).

Speech: espeak-ng reading English sentences in several language voices, both genders, at
several rates and pitches. Each clip takes one condition:
- clean;
- in a room (RT60 0.3-1.2 s);
- over a music bed (5-20 dB);
- over noise (5-25 dB);
- room plus noise.
A fifth of the clips are also band-limited to 4 kHz (telephone).

Music is synthesised in four kinds, each optionally in a room and band-limited like the speech:
- plucked chords;
- sustained pads with vibrato;
- drum, bass and melody patterns;
- sung-vowel melodies, which are harmonic and formant-shaped like speech but held on notes.

Noise is white, pink, brown or hum, band-passed noise, fan noise, or rain of clicks, each
amplitude-modulated at random. Everything is seeded: the same arguments give the same clips.
"""

from __future__ import annotations

import numpy as np

from audiomill.models.generation import scene, voices
from audiomill.models.generation.voices import SENTENCES
from audiomill.schema import SAMPLE_RATE

SPEECH_VOICES = ("en-us", "en-gb", "es", "de", "fr", "it", "pt")


def speech_clip(index: int, rng: np.random.Generator) -> np.ndarray:
    language = SPEECH_VOICES[index % len(SPEECH_VOICES)]
    variant = str(rng.choice(voices.FEMALE_VARIANTS + voices.MALE_VARIANTS))
    text = " ".join(SENTENCES[int(i)] for i in rng.choice(len(SENTENCES), size=int(rng.integers(1, 3)), replace=False))
    audio = voices.espeak(text, f"{language}+{variant}", speed_wpm=int(rng.integers(130, 220)),
                          pitch=int(rng.integers(20, 80)))
    condition = rng.random()
    if condition < 0.25:
        pass
    elif condition < 0.5:
        audio = scene.reverberate(audio, float(rng.uniform(0.3, 1.2)), seed=int(rng.integers(1 << 30)))
    elif condition < 0.65:
        audio = scene.mix_at_snr(audio, music_clip(audio.size, rng, bed=True), float(rng.uniform(5, 20)))
    elif condition < 0.85:
        audio = scene.mix_at_snr(audio, noise_clip(audio.size, rng), float(rng.uniform(5, 25)))
    else:
        audio = scene.reverberate(audio, float(rng.uniform(0.3, 1.0)), seed=int(rng.integers(1 << 30)))
        audio = scene.mix_at_snr(audio, noise_clip(audio.size, rng), float(rng.uniform(10, 25)))
    return _finish(audio, rng)


def music_clip(n: int, rng: np.random.Generator, bed: bool = False) -> np.ndarray:
    kind = int(rng.integers(4))
    if kind == 0:
        audio = scene.music(n, rng)
    elif kind == 1:
        audio = _pads(n, rng)
    elif kind == 2:
        audio = _band(n, rng)
    else:
        audio = _sung(n, rng)
    if bed:
        return audio.astype(np.float32)
    if rng.random() < 0.4:
        audio = scene.reverberate(audio.astype(np.float32), float(rng.uniform(0.3, 1.2)), seed=int(rng.integers(1 << 30)))
    return _finish(audio, rng)


def noise_clip(n: int, rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(6))
    white = rng.standard_normal(n)
    if kind == 0:
        audio = white
    elif kind == 1:
        audio = scene.pink(n, rng)
    elif kind == 2:
        audio = np.cumsum(white)
        audio -= np.convolve(audio, np.ones(801) / 801, mode="same")  # brown, DC removed
    elif kind == 3:
        audio = scene.hum(n, rng)
    elif kind == 4:
        audio = _bandpass(white, float(rng.uniform(200, 3000)), float(rng.uniform(1.5, 4)))
    else:
        audio = _bandpass(white, 300.0, 6.0) + scene.hum(n, rng) * 0.3 + _clicks(n, rng)
    envelope = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.05, 3) * np.arange(n) / SAMPLE_RATE + rng.uniform(0, 6))
    return (audio * envelope / max(np.std(audio), 1e-9)).astype(np.float32)


def _finish(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Band-limit a fifth of the clips to 4 kHz; set a random level (-35..-12 dBFS RMS)."""
    audio = np.asarray(audio, np.float64)
    if rng.random() < 0.2:
        spectrum = np.fft.rfft(audio)
        spectrum[int(len(spectrum) * 4000 / (SAMPLE_RATE / 2)):] = 0
        audio = np.fft.irfft(spectrum, n=audio.size)
    rms = np.sqrt(np.mean(audio ** 2)) + 1e-12
    audio *= 10 ** (rng.uniform(-35, -12) / 20) / rms
    return np.clip(audio, -1, 1).astype(np.float32)


def _note(freq: float, seconds: float, rng: np.random.Generator, decay: float, harmonics: int = 6,
          vibrato: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * freq * (t + vibrato * np.sin(2 * np.pi * 5.5 * t) / (2 * np.pi * 5.5))
    tone = sum(np.sin(h * phase) * rng.uniform(0.3, 1.0) / h for h in range(1, harmonics + 1))
    attack = np.minimum(1, t / 0.01)
    return tone * attack * np.exp(-decay * t)


def _place(out: np.ndarray, sound: np.ndarray, start: int) -> None:
    stop = min(out.size, start + sound.size)
    if start < stop:
        out[start:stop] += sound[:stop - start]


def _pads(n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    step = int(rng.uniform(1.0, 2.5) * SAMPLE_RATE)
    for start in range(0, n, step):
        root = 110 * 2 ** (rng.integers(0, 24) / 12)
        for interval in (0, 4, 7, 11)[:int(rng.integers(2, 5))]:
            _place(out, _note(root * 2 ** (interval / 12), step / SAMPLE_RATE + 0.3, rng, 0.3, vibrato=0.004), start)
    return out


def _band(n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    beat = int(SAMPLE_RATE * 60 / rng.uniform(80, 160))
    key = 55 * 2 ** (rng.integers(0, 12) / 12)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    t_kick = np.arange(int(0.25 * SAMPLE_RATE)) / SAMPLE_RATE
    kick = np.sin(2 * np.pi * 60 * t_kick * (1 + 2 * np.exp(-30 * t_kick))) * np.exp(-12 * t_kick)
    snare = rng.standard_normal(int(0.15 * SAMPLE_RATE)) * np.exp(-25 * np.arange(int(0.15 * SAMPLE_RATE)) / SAMPLE_RATE)
    for i, start in enumerate(range(0, n, beat)):
        _place(out, kick if i % 2 == 0 else 0.5 * snare, start)
        _place(out, 0.6 * _note(key * 2 ** (scale[int(rng.integers(7))] / 12), beat / SAMPLE_RATE, rng, 3.0, 4), start)
        melody = key * 4 * 2 ** (scale[int(rng.integers(7))] / 12)
        _place(out, 0.5 * _note(melody, beat / SAMPLE_RATE * rng.choice([0.5, 1, 2]), rng, 1.5), start)
    return out


def _sung(n: int, rng: np.random.Generator) -> np.ndarray:
    """A vowel held on each note: harmonics shaped by two formants, with vibrato."""
    out = np.zeros(n)
    root = 196 * 2 ** (rng.integers(-5, 8) / 12)
    start = 0
    while start < n:
        seconds = float(rng.uniform(0.3, 1.0))
        freq = root * 2 ** (rng.choice([0, 2, 4, 5, 7, 9, 12]) / 12)
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        phase = 2 * np.pi * freq * (t + 0.006 * np.sin(2 * np.pi * 5.5 * t) / (2 * np.pi * 5.5))
        f1, f2 = rng.uniform(300, 800), rng.uniform(900, 2500)
        voice = sum(np.sin(h * phase) * (np.exp(-((h * freq - f1) / 150) ** 2) + 0.7 * np.exp(-((h * freq - f2) / 250) ** 2)
                                          + 0.05 / h) for h in range(1, 30) if h * freq < SAMPLE_RATE / 2)
        _place(out, voice * np.minimum(1, t / 0.05) * np.minimum(1, (seconds - t) / 0.05), start)
        start += int(seconds * SAMPLE_RATE)
    return out + 0.3 * _pads(n, rng)


def _bandpass(audio: np.ndarray, centre_hz: float, octaves: float) -> np.ndarray:
    spectrum = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)
    low, high = centre_hz / 2 ** (octaves / 2), centre_hz * 2 ** (octaves / 2)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, n=audio.size)


def _clicks(n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    out[rng.integers(0, n, size=max(1, n // 400))] = rng.uniform(-1, 1, size=max(1, n // 400))
    return out


def training_set(clips_per_class: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """(clips, labels) with ``clips_per_class`` of each of speech, music, noise (label 0, 1, 2)."""
    rng = np.random.default_rng(seed)
    clips: list[np.ndarray] = []
    labels: list[int] = []
    for i in range(clips_per_class):
        clips.append(speech_clip(i, rng))
        n = int(rng.uniform(2.5, 6.0) * SAMPLE_RATE)
        clips.append(music_clip(n, rng))
        clips.append(_finish(noise_clip(n, rng), rng))
        labels += [0, 1, 2]
    return clips, np.asarray(labels)
