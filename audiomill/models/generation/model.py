"""The embedded generation model: speaks an annotation back, then renders its scene on top.

The speaker profile maps to engine controls: language + gender pick the voice (Piper's neural
en_US male for English male voices within 3 semitones of its pitch when ``engine="auto"``, espeak-ng variants otherwise),
the pitch label sets espeak's pitch (calibrated to Hz), the rate label sets words per minute (or
Piper's length scale). The scene label is rendered after: reverberation (RT60 0.6 s) for
``reverberant``, then the labelled noise type at the centre of the labelled SNR band (none for
``ge30``). Style maps to espeak's intonation range only (animated: x-high, calm: x-low); no engine here
has emotional prosody.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from audiomill import annotation as ann
from audiomill import schema
from audiomill.annotation import Annotation
from audiomill.models.generation import scene, voices

Engine = Literal["auto", "espeak", "piper"]
PITCH_CENTRES_HZ = {"low": 110.0, "mid": 180.0, "high": 250.0}
RATE_CENTRES_WPS = {"slow": 2.8, "normal": 4.1, "fast": 5.8}
REVERB_RT60_S = 0.6
PIPER_MAX_ST = 3.0  # Piper's voice has one pitch: used only for profiles within this many semitones
VERSION = "embedded-tts-v1"


@dataclass(frozen=True)
class Synthesis:
    """The re-synthesis: ``clean`` speech and ``audio`` with the labelled scene (16 kHz)."""

    clean: np.ndarray
    audio: np.ndarray
    engine: str


def clip_seed(key: str) -> int:
    """A stable per-clip seed (noise and room draws repeat exactly on rerun)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "little")


class Generator:
    """Annotation -> speech. ``model_id`` is what verify.parquet records."""

    def __init__(self, engine: Engine = "auto", babble_voices: list[np.ndarray] | None = None) -> None:
        self.engine = engine
        self.model_id = f"{VERSION}-{engine}"
        self._babble = babble_voices

    def synthesize(self, label: Annotation) -> Synthesis:
        text = (label.value(schema.ANN_TRANSCRIPT) or "").strip()
        if not text:
            raise voices.EngineError("empty transcript: nothing to speak")
        engine = self._pick_engine(label)
        clean = self._speak(text, label, engine)
        clean = np.concatenate([np.zeros(2400, np.float32), clean, np.zeros(2400, np.float32)])
        return Synthesis(clean, self.render(clean, label), engine)

    def render(self, speech: np.ndarray, label: Annotation) -> np.ndarray:
        """The labelled scene on ``speech``: reverberation, then noise at the band's SNR."""
        scene_label = label.value(schema.ANN_SCENE)
        noise_type = label.value(schema.ANN_NOISE_TYPE) or "none"
        band = label.value(schema.ANN_SNR_BAND)
        snr = ann.SNR_BAND_CENTRES_DB.get(band) if band and band != "ge30" else None
        if noise_type == "none" and snr is not None:
            noise_type = "white"
        if noise_type == "babble" and not self._babble:
            noise_type = "pink"
        rt60 = REVERB_RT60_S if scene_label == "reverberant" else 0.0
        return scene.render_scene(speech, noise_type, snr, rt60, clip_seed(label.key), self._babble)

    def _pick_engine(self, label: Annotation) -> str:
        if self.engine != "auto":
            return self.engine
        male_en = label.value(schema.ANN_GENDER) == "male" and label.value(schema.ANN_LANGUAGE) == "en"
        if not male_en:
            return "espeak"
        return "piper" if abs(12 * math.log2(_target_pitch(label) / voices.piper_pitch_hz())) <= PIPER_MAX_ST else "espeak"

    def _speak(self, text: str, label: Annotation, engine: str) -> np.ndarray:
        wps = _target_rate(label)
        if engine == "piper":
            return voices.piper(text, length_scale=float(np.clip(RATE_CENTRES_WPS["normal"] / wps, 0.6, 1.8)))
        variant = "f3" if label.value(schema.ANN_GENDER) == "female" else "m3"
        voice = voices.espeak_voice(label.value(schema.ANN_LANGUAGE) or "en", variant)
        pitch = voices.espeak_pitch_for(voice, _target_pitch(label))
        style_range = {"animated": "x-high", "calm": "x-low"}.get(label.value(schema.ANN_STYLE) or "", "")
        return voices.espeak(text, voice, speed_wpm=int(round(wps * voices.ESPEAK_WPM_PER_WPS)), pitch=pitch,
                             pitch_range=style_range)


def _target_pitch(label: Annotation) -> float:
    """The measured f0 when it lies in the labelled band, else the band's centre (Hz)."""
    item = label.fields[schema.ANN_PITCH_BAND]
    centre = PITCH_CENTRES_HZ.get(item.value or "", 150.0)
    if item.measure is not None and math.isfinite(item.measure) and ann.pitch_band(item.measure) == item.value:
        return float(item.measure)
    return centre


def _target_rate(label: Annotation) -> float:
    item = label.fields[schema.ANN_RATE_BAND]
    if item.measure is not None and math.isfinite(item.measure) and ann.rate_band(item.measure) == item.value:
        return float(np.clip(item.measure, 1.5, 8.0))
    return RATE_CENTRES_WPS.get(item.value or "", RATE_CENTRES_WPS["normal"])
