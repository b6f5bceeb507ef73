"""Clips with known answers: round 0 trains the attribute heads on them, every round evaluates on them.

Generated clips: espeak-ng speech of known sentences in known voices (gender from the variant;
age from proxies: ``grandpa``/``grandma`` variants are "senior", a female variant at the top of
its pitch range speaking fast is "child"), pitch and rate settings, intonation range as the style
proxy (animated: x-high, calm: x-low), then a known scene: quiet, noise of a known type mixed at
a known SNR, or simulated reverberation. Pitch and rate bands are measured on the clean speech
(the same rule the understanding model applies). Real clips: the alsa-utils channel announcements
(``/usr/share/sounds/alsa``: one woman reading "Front Center" etc. in a quiet studio).

Which answers are synthetic: age and style are proxies an espeak voice can act, not real
children, seniors or emotions; gender, scene, noise type and SNR are physically what was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from audiomill import annotation as ann
from audiomill import schema
from audiomill.annotation import Truth
from audiomill.models.generation import scene, voices
from audiomill.models.generation.voices import SENTENCES
from audiomill.models.understanding.measures import active_seconds
from audiomill.models.understanding.pitch import pitch_stats

ALSA_DIR = Path("/usr/share/sounds/alsa")
ALSA_TEXTS = {"Front_Center": "Front Center", "Front_Left": "Front Left", "Front_Right": "Front Right",
              "Rear_Center": "Rear Center", "Rear_Left": "Rear Left", "Rear_Right": "Rear Right",
              "Side_Left": "Side Left", "Side_Right": "Side Right"}
NOISES = ("white", "pink", "babble", "hum", "music")
SNR_RANGES_DB = {"lt10": (3.0, 9.0), "10to20": (11.0, 19.0), "20to30": (21.0, 29.0)}


@dataclass(frozen=True)
class SeedClip:
    """One clip with known answers; ``origin`` is "generated" or "real"."""

    key: str
    audio: np.ndarray  # 16 kHz mono float32
    truth: Truth
    origin: str


def _voice(rng: np.random.Generator) -> tuple[str, str, str, int, int, str]:
    """(gender, age, variant, espeak pitch, words/min, style)."""
    gender = ("female", "male")[int(rng.integers(2))]
    age = ("adult", "adult", "adult", "senior", "child")[int(rng.integers(5))]
    if age == "child":
        gender, variant, pitch, wpm = "female", "f4", 99, int(rng.integers(200, 240))
    elif age == "senior":
        variant = "grandma" if gender == "female" else "grandpa"
        pitch, wpm = int(rng.integers(30, 70)), int(rng.integers(110, 170))
    else:
        variant = str(rng.choice(voices.FEMALE_VARIANTS if gender == "female" else voices.MALE_VARIANTS))
        pitch = int(rng.integers(45, 95) if gender == "female" else rng.integers(15, 70))
        wpm = int(rng.integers(110, 250))
    style = ann.STYLES[int(rng.integers(len(ann.STYLES)))]
    return gender, age, variant, pitch, wpm, style


def _scene(rng: np.random.Generator) -> tuple[str, str, float | None, float, str]:
    """(scene, noise type, SNR dB or None, RT60 s, SNR band)."""
    draw = rng.random()
    if draw < 0.35:
        return "quiet", "none", None, 0.0, "ge30"
    if draw < 0.8:
        band = ("lt10", "10to20", "20to30")[int(rng.integers(3))]
        snr = float(rng.uniform(*SNR_RANGES_DB[band]))
        return "noisy", NOISES[int(rng.integers(len(NOISES)))], snr, 0.0, band
    return "reverberant", "none", None, float(rng.uniform(0.5, 0.9)), "ge30"


def babble_voices() -> list[np.ndarray]:
    """Four espeak talkers that babble noise is mixed from (not voices of the seed clips)."""
    return [voices.espeak(s, voices.espeak_voice("en", v)) for s, v in
            zip(SENTENCES[-4:], ("m5", "f5", "m7", "f1"))]


def generated_clip(index: int, seed: int, babble: list[np.ndarray],
                   texts: tuple[str, ...] = SENTENCES) -> SeedClip:
    """Clip ``index`` of ``seed``: a sentence of ``texts`` in a drawn voice and scene."""
    rng = np.random.default_rng([seed, index])
    text = texts[int(rng.integers(len(texts)))]
    gender, age, variant, pitch, wpm, style = _voice(rng)
    clean = voices.espeak(text, voices.espeak_voice("en", variant), speed_wpm=wpm, pitch=pitch,
                          pitch_range={"animated": "x-high", "calm": "x-low"}.get(style, ""))
    clean = np.concatenate([np.zeros(3200, np.float32), clean, np.zeros(3200, np.float32)])
    scene_name, noise, snr, rt60, snr_band = _scene(rng)
    audio = scene.render_scene(clean, noise, snr, rt60, seed * 100_003 + index, babble)
    audio *= np.float32(10 ** (rng.uniform(-8.0, 0.0) / 20))
    labels = {schema.ANN_GENDER: gender, schema.ANN_AGE_BAND: age, schema.ANN_STYLE: style,
              schema.ANN_SCENE: scene_name, schema.ANN_NOISE_TYPE: noise, schema.ANN_SNR_BAND: snr_band}
    labels.update(_measured_bands(clean, text))
    return SeedClip(f"seed-{seed}-{index:05d}", audio.astype(np.float32), Truth(text, "en", labels), "generated")


def _measured_bands(clean: np.ndarray, text: str) -> dict[str, str]:
    out = {}
    f0 = pitch_stats(clean).median_hz
    if np.isfinite(f0):
        out[schema.ANN_PITCH_BAND] = ann.pitch_band(f0)
    active = active_seconds(clean)
    if active > 0:
        out[schema.ANN_RATE_BAND] = ann.rate_band(len(text.split()) / active)
    return out


def generated_set(count: int, seed: int = 0, texts: tuple[str, ...] = SENTENCES) -> list[SeedClip]:
    """``count`` generated clips; the same (count, seed, texts) always gives the same samples."""
    babble = babble_voices()
    return [generated_clip(i, seed, babble, texts) for i in range(count)]


def real_set() -> list[SeedClip]:
    """The alsa-utils announcements (empty when alsa-utils is not installed)."""
    out = []
    for stem, text in sorted(ALSA_TEXTS.items()):
        path = ALSA_DIR / f"{stem}.wav"
        if not path.is_file():
            continue
        audio, rate = sf.read(path, dtype="float32")
        audio = audio.mean(axis=1) if audio.ndim == 2 else audio
        g = np.gcd(rate, 16_000)
        audio = resample_poly(audio, 16_000 // g, rate // g).astype(np.float32)
        labels = {schema.ANN_GENDER: "female", schema.ANN_AGE_BAND: "adult", schema.ANN_STYLE: "neutral",
                  schema.ANN_SCENE: "quiet", schema.ANN_NOISE_TYPE: "none", schema.ANN_SNR_BAND: "ge30"}
        labels.update(_measured_bands(audio, text))
        out.append(SeedClip(f"alsa-{stem.replace('_', '-').lower()}", audio, Truth(text, "en", labels), "real"))
    return out
