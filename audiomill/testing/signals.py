"""Signal makers and audio file writers for tests and benchmarks.

Every maker returns a float32 mono array in [-1, 1] at the requested sample rate (Hz). Levels are
RMS levels in dBFS, i.e. ``20 * log10(rms)`` with full scale = 1.0, so a -20 dBFS sine has a peak
of about 0.141. Writers are deterministic: the same array written twice gives identical bytes.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import av
import numpy as np
import soundfile as sf

ALSA_SOUNDS_DIR = Path("/usr/share/sounds/alsa")
ESPEAK_SAMPLE_RATE = 22_050
"""espeak-ng always writes 22.05 kHz 16-bit mono."""

SOUNDFILE_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
# fmt -> (candidate encoder names in order of preference, PyAV container format name)
PYAV_FORMATS = {
    "mp3": (("libmp3lame", "mp3"), "mp3"),
    "opus": (("libopus",), "ogg"),
    "m4a": (("aac",), "ipod"),
}


def _samples(seconds: float, sr: int) -> int:
    return int(round(seconds * sr))


def rms_to_amplitude(level_dbfs: float) -> float:
    return float(10.0 ** (level_dbfs / 20.0))


def sine(freq_hz: float, seconds: float, sr: int, level_dbfs: float = -20.0) -> np.ndarray:
    """A pure tone at an RMS level of ``level_dbfs``; raises if it would clip (above -3.01 dBFS)."""
    peak = rms_to_amplitude(level_dbfs) * np.sqrt(2.0)
    if peak > 1.0:
        raise ValueError(f"level_dbfs={level_dbfs} makes a sine clip; use -3.01 dBFS or less")
    t = np.arange(_samples(seconds, sr), dtype=np.float64) / sr
    return (peak * np.sin(2.0 * np.pi * freq_hz * t)).astype(np.float32)


def white_noise(seconds: float, sr: int, level_dbfs: float = -30.0, seed: int = 0) -> np.ndarray:
    """Gaussian white noise at an RMS level of ``level_dbfs``, clipped to [-1, 1]."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(_samples(seconds, sr), dtype=np.float32)
    noise *= np.float32(rms_to_amplitude(level_dbfs))
    return np.clip(noise, -1.0, 1.0)


def silence(seconds: float, sr: int) -> np.ndarray:
    return np.zeros(_samples(seconds, sr), dtype=np.float32)


def music_like(seconds: float, sr: int, seed: int = 0, level_dbfs: float = -18.0) -> np.ndarray:
    """Tonal, non-speech audio: a chord progression of harmonic tones over a kick drum beat.

    Chords change every beat (0.4-0.7 s, fixed per clip); each note has 5 decaying harmonics and a
    pluck envelope; a 55 Hz kick with a fast pitch drop marks each beat.
    """
    rng = np.random.default_rng(seed)
    n = _samples(seconds, sr)
    beat = _samples(rng.uniform(0.4, 0.7), sr)
    t = np.arange(beat, dtype=np.float64) / sr
    pluck = np.exp(-3.0 * t / (beat / sr)) * np.minimum(1.0, t / 0.01)
    kick = np.sin(2 * np.pi * (55.0 * t + 60.0 * (1 - np.exp(-t / 0.03)) * 0.03)) * np.exp(-t / 0.08)
    roots = 110.0 * 2.0 ** (rng.integers(0, 12, size=4) / 12.0)
    major = np.array([1.0, 2 ** (4 / 12), 2 ** (7 / 12)])
    out = np.zeros(n + beat, dtype=np.float64)
    for i, start in enumerate(range(0, n, beat)):
        freqs = roots[(i // 4) % len(roots)] * major
        partials = freqs[:, None] * np.arange(1, 6)[None, :]
        weights = np.broadcast_to(0.6 ** np.arange(5), partials.shape)
        chord = (weights[..., None] * np.sin(2 * np.pi * partials[..., None] * t)).sum(axis=(0, 1))
        out[start : start + beat] += chord * pluck + 1.5 * kick
    out = out[:n]
    out *= rms_to_amplitude(level_dbfs) / max(float(np.sqrt(np.mean(out**2))), 1e-12)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def espeak(
    text: str, voice: str = "en", speed: int | None = None, pitch: int | None = None
) -> tuple[np.ndarray, int]:
    """Speech of ``text`` from the espeak-ng binary: (float32 mono audio, 22050).

    ``voice`` is an espeak-ng voice, optionally with a variant (``"en+f3"``); ``speed`` is words per
    minute (espeak default 175), ``pitch`` 0-99 (default 50).
    """
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise RuntimeError("espeak-ng not found on PATH; install the apt package 'espeak-ng'")
    cmd = [binary, "-v", voice, "--stdout", "--stdin"]
    if speed is not None:
        cmd += ["-s", str(int(speed))]
    if pitch is not None:
        cmd += ["-p", str(int(pitch))]
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"espeak-ng failed for voice {voice!r}: {detail}")
    audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return audio, sr


def alsa_clips() -> list[Path]:
    """The alsa-utils test clips (real human speech, 48 kHz, plus ``Noise.wav``); may be empty."""
    if not ALSA_SOUNDS_DIR.is_dir():
        return []
    return sorted(p for p in ALSA_SOUNDS_DIR.glob("*.wav") if p.is_file())


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Band-limited FFT resampling along axis 0; fine for clips that start and end quietly."""
    if sr_from == sr_to:
        return audio.astype(np.float32, copy=True)
    n_in = audio.shape[0]
    n_out = int(round(n_in * sr_to / sr_from))
    spectrum = np.fft.rfft(audio.astype(np.float64), axis=0)
    keep = min(spectrum.shape[0], n_out // 2 + 1)
    out_spec = np.zeros((n_out // 2 + 1,) + audio.shape[1:], dtype=np.complex128)
    out_spec[:keep] = spectrum[:keep]
    out = np.fft.irfft(out_spec, n=n_out, axis=0) * (n_out / n_in)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def trim_silence_bounds(audio: np.ndarray, sr: int, thresh_dbfs: float = -45.0) -> tuple[float, float]:
    """Seconds where sound first and last rises above ``thresh_dbfs`` RMS in 10 ms frames.

    Precision is one frame (10 ms). Stereo input is averaged to mono. Raises ValueError when no
    frame is loud enough.
    """
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    frame = max(1, sr // 100)
    n_frames = len(mono) // frame
    if n_frames == 0:
        raise ValueError("audio is shorter than one 10 ms frame")
    frames = mono[: n_frames * frame].astype(np.float64).reshape(n_frames, frame)
    rms_db = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    loud = np.flatnonzero(rms_db > thresh_dbfs)
    if loud.size == 0:
        raise ValueError(f"no 10 ms frame above {thresh_dbfs} dBFS")
    return float(loud[0] * frame / sr), float((loud[-1] + 1) * frame / sr)


def available_encoders() -> dict[str, str | None]:
    """Which encoder ``write_audio`` uses for each format, or None where none is available."""
    encoders: dict[str, str | None] = {fmt: "libsndfile" for fmt in SOUNDFILE_FORMATS}
    for fmt, (candidates, _) in PYAV_FORMATS.items():
        encoders[fmt] = next((name for name in candidates if _has_encoder(name)), None)
    return encoders


def _has_encoder(name: str) -> bool:
    try:
        av.Codec(name, "w")
    except ValueError:  # UnknownCodecError
        return False
    return True


def write_audio(path: Path, audio: np.ndarray, sr: int, fmt: str | None = None,
                bit_rate: int | None = None) -> Path:
    """Write ``audio`` (float32, shape (n,) or (n, channels)) as wav/flac/ogg/mp3/opus/m4a.

    ``fmt`` defaults to the file suffix; ``bit_rate`` (bit/s) sets a PyAV encoder's rate (mp3,
    opus, m4a; None = the encoder's default). wav and flac are 16-bit PCM. Encoders whose containers
    embed random stream serials or timestamps are pinned so repeated writes are byte-identical.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in SOUNDFILE_FORMATS:
        container, subtype = SOUNDFILE_FORMATS[fmt]
        buf = io.BytesIO()
        sf.write(buf, audio, sr, format=container, subtype=subtype)
        data = _pin_ogg_serials(buf.getvalue()) if container == "OGG" else buf.getvalue()
        path.write_bytes(data)
    elif fmt in PYAV_FORMATS:
        _write_with_pyav(path, audio, sr, fmt, bit_rate)
    else:
        raise ValueError(f"unknown audio format {fmt!r} for {path}")
    return path


def _write_with_pyav(path: Path, audio: np.ndarray, sr: int, fmt: str, bit_rate: int | None = None) -> None:
    encoder = available_encoders()[fmt]
    if encoder is None:
        raise RuntimeError(f"PyAV's ffmpeg has no encoder for {fmt}; tried {PYAV_FORMATS[fmt][0]}")
    planar = np.ascontiguousarray((audio[:, None] if audio.ndim == 1 else audio).T, dtype=np.float32)
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    rates = av.Codec(encoder, "w").audio_rates
    rate = sr if not rates or sr in rates else max(rates)
    with av.open(str(path), "w", format=PYAV_FORMATS[fmt][1], options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(encoder, rate=rate)
        stream.layout = layout
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV: (float32 mono audio, native sample rate)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=stream.rate)
        chunks = [
            out.to_ndarray()[0]
            for frame in container.decode(stream)
            for out in resampler.resample(frame)
        ]
        chunks += [out.to_ndarray()[0] for out in resampler.resample(None)]
        rate = stream.rate
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return audio.astype(np.float32, copy=False), rate


def _ogg_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        reg = byte << 24
        for _ in range(8):
            reg = ((reg << 1) ^ 0x04C11DB7) if reg & 0x80000000 else reg << 1
        table.append(reg & 0xFFFFFFFF)
    return table


_OGG_CRC_TABLE = _ogg_crc_table()


def _pin_ogg_serials(data: bytes, serial: int = 1) -> bytes:
    """Replace libsndfile's time-seeded Ogg stream serial with ``serial`` and fix page CRCs."""
    out = bytearray(data)
    pos = 0
    while pos < len(out):
        if out[pos : pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        n_segments = out[pos + 26]
        end = pos + 27 + n_segments + sum(out[pos + 27 : pos + 27 + n_segments])
        struct.pack_into("<I", out, pos + 14, serial)
        struct.pack_into("<I", out, pos + 22, 0)
        crc = 0
        for byte in out[pos:end]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC_TABLE[((crc >> 24) ^ byte) & 0xFF]
        struct.pack_into("<I", out, pos + 22, crc)
        pos = end
    return bytes(out)
