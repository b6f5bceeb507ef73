"""A labeled near-duplicate set for dedup tests and benchmarks: clips, transformations, truth.

Originals are espeak-ng sentences (several voices; same text in different voices and different
texts in the same voice are the hard negatives), the alsa-utils human clips (one speaker saying
different words) and longer multi-sentence recordings. Chosen originals get transformed copies:
lossy re-encodes, resampling round trips, gain, noise, trims by about a second (never on the 5 ms
frame grid) and embedding in a longer recording. Two clips are true duplicates when they share any
content id (an original and everything made from it). All audio is 16 kHz mono float32.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import av
import numpy as np
import scipy.signal

from audiomill.schema import SAMPLE_RATE
from audiomill.testing import signals
from audiomill.testing.corpus import EN as CORPUS_EN

EN = CORPUS_EN[:6]
LONG_EN = [
    "Turn left at the second traffic light, then keep going straight.",
    "My brother plays the violin every evening after dinner.",
    "The train to the coast leaves every hour from the north platform.",
    "She painted the kitchen a pale shade of green last summer.",
]
VOICES = ("en", "en+f3", "en+m3", "en-us")
FILLER_TEXTS = ["Le vif renard brun saute par-dessus le chien paresseux.", "Il fait très beau à Paris.",
                "El veloz zorro marrón salta sobre el perro perezoso.", "Hoy hace buen tiempo en Madrid."]
FILLER_VOICES = ("fr", "es", "fr+f2", "es+m3", "fr+m1")
TRANSFORMED = ["en:0", "en+f3:1", "en+m3:2", "en-us:3", "en:4", "en+f3:5", "alsa:Front_Left",
               "alsa:Rear_Right", "long:en", "long:en+f3"]
TRIM_SAMPLES = (SAMPLE_RATE + 37, SAMPLE_RATE + 53)  # about 1 s, off the 80-sample frame grid


@dataclass(frozen=True)
class LabeledClip:
    name: str  # "<original>" or "<original>|<transform>"
    audio: np.ndarray
    contents: frozenset[str]  # ids of the original recordings it contains

    @property
    def transform(self) -> str:
        return self.name.partition("|")[2] or "original"

    @property
    def original(self) -> str:
        return self.name.partition("|")[0]


def is_duplicate(a: LabeledClip, b: LabeledClip) -> bool:
    return bool(a.contents & b.contents)


def make_dedup_set(seed: int = 0) -> list[LabeledClip]:
    """Originals first, then transformed copies; deterministic for a seed (about 140 clips)."""
    originals = _originals()
    clips = [LabeledClip(name, audio, frozenset([name])) for name, audio in originals.items()]
    fillers = [(t, v) for t in FILLER_TEXTS for v in FILLER_VOICES]
    for i, name in enumerate(TRANSFORMED):
        audio = originals[name]
        around = (_speech(*fillers[2 * i]), _speech(*fillers[2 * i + 1]))
        for transform, out in transforms(audio, seed + i, around).items():
            contents = {name} | ({f"filler:{2 * i}", f"filler:{2 * i + 1}"} if transform == "contained" else set())
            clips.append(LabeledClip(f"{name}|{transform}", out, frozenset(contents)))
    return clips


def transforms(audio: np.ndarray, seed: int, around: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Each transformation named in the dedup requirements, applied to 16 kHz ``audio``."""
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    noise = signals.white_noise(len(audio) / SAMPLE_RATE, SAMPLE_RATE, 20 * np.log10(rms) - 20.0, seed=seed)
    out = {
        "mp3_64k": reencode(audio, "mp3", 64_000, 44_100),
        "rs8k": _round_trip(audio, 8_000),
        "rs22k": _round_trip(audio, 22_050),
        "rs44k": _round_trip(audio, 44_100),
        "gain+6": np.clip(audio * np.float32(10 ** (6 / 20)), -1.0, 1.0),
        "gain-6": audio * np.float32(10 ** (-6 / 20)),
        "noise20": np.clip(audio + noise[: len(audio)], -1.0, 1.0),
        "contained": np.concatenate([around[0], signals.silence(0.3, SAMPLE_RATE), audio,
                                     signals.silence(0.4, SAMPLE_RATE), around[1]]),
    }
    if signals.available_encoders().get("opus"):
        out["opus_32k"] = reencode(audio, "opus", 32_000, 48_000)
    if len(audio) > 2.5 * SAMPLE_RATE:
        out["trim_start"] = audio[TRIM_SAMPLES[0]:]
        out["trim_end"] = audio[: -TRIM_SAMPLES[1]]
    return {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in out.items()}


def reencode(audio: np.ndarray, fmt: str, bit_rate: int, rate: int) -> np.ndarray:
    """Encode 16 kHz ``audio`` at ``rate`` Hz and ``bit_rate`` bit/s with PyAV, decode back to 16 kHz."""
    encoder = signals.available_encoders()[fmt]
    if encoder is None:
        raise RuntimeError(f"PyAV has no {fmt} encoder")
    upsampled = resample(audio, SAMPLE_RATE, rate)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=signals.PYAV_FORMATS[fmt][1]) as out:
        stream = out.add_stream(encoder, rate=rate)
        stream.bit_rate, stream.layout = bit_rate, "mono"
        frame = av.AudioFrame.from_ndarray(upsampled[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=SAMPLE_RATE)
        chunks = [o.to_ndarray()[0] for f in container.decode(audio=0) for o in resampler.resample(f)]
        chunks += [o.to_ndarray()[0] for o in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32)


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Polyphase resampling (fast for any length, unlike an FFT over the whole clip)."""
    if sr_from == sr_to:
        return np.asarray(audio, dtype=np.float32)
    common = math.gcd(sr_from, sr_to)
    out = scipy.signal.resample_poly(np.asarray(audio, dtype=np.float64), sr_to // common, sr_from // common)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _round_trip(audio: np.ndarray, rate: int) -> np.ndarray:
    return resample(resample(audio, SAMPLE_RATE, rate), rate, SAMPLE_RATE)


def _speech(text: str, voice: str) -> np.ndarray:
    audio, sr = signals.espeak(text, voice)
    return resample(audio, sr, SAMPLE_RATE)


def _originals() -> dict[str, np.ndarray]:
    originals = {f"{voice}:{i}": _speech(text, voice) for i, text in enumerate(EN) for voice in VOICES}
    for clip in signals.alsa_clips():
        if clip.stem != "Noise":
            audio, sr = signals.read_audio(clip)
            originals[f"alsa:{clip.stem}"] = resample(audio, sr, SAMPLE_RATE)
    pause = signals.silence(0.35, SAMPLE_RATE)
    for j, voice in enumerate(("en", "en+f3")):
        texts = LONG_EN[j: j + 3]
        pieces = [piece for text in texts for piece in (_speech(text, voice), pause)][:-1]
        originals[f"long:{voice}"] = np.concatenate(pieces)
    return originals
