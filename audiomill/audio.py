"""Audio decoding (PyAV) to 16 kHz mono float32, and FLAC encoding for shards.

Decoding failures are data, not crashes: ``decode_audio`` raises ``DecodeRejected`` carrying a
reason code, which the decode stage turns into a reject row.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

import av
import numpy as np
import soundfile as sf

from audiomill.config import DecodeConfig
from audiomill.decode_blocks import MonoBlocks
from audiomill.schema import SAMPLE_RATE, RejectReason

# Leading bytes of containers FFmpeg reads as audio. A file that fails to open and starts with none
# of these is "not audio" (text, HTML error page, random bytes) rather than a damaged audio file.
_AUDIO_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"RIFF"), (0, b"RF64"), (0, b"fLaC"), (0, b"OggS"), (0, b"ID3"), (0, b"FORM"),
    (0, b".snd"), (0, b"\x1a\x45\xdf\xa3"), (4, b"ftyp"), (0, b"#!AMR"), (0, b"MAC "),
    (0, b"wvpk"), (0, b"\x30\x26\xb2\x75"), (0, b"caff"), (0, b"MThd"),
)
_MIN_SAMPLE_RATE_HZ = 8_000
_MAX_SAMPLE_RATE_HZ = 384_000


class DecodeRejected(Exception):
    """The input cannot become analysis audio; ``reason`` is the reject code."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, mono, SAMPLE_RATE
    orig_sample_rate: int
    orig_channels: int
    codec: str
    container: str
    orig_duration_s: float  # duration of the decoded original stream
    orig_bandwidth_hz: float | None = None  # signal bandwidth at the native rate (decode_blocks.BandSampler)

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE


def looks_like_audio_container(head: bytes) -> bool:
    """True if ``head`` starts like a known audio container, or like an MPEG audio frame."""
    if any(head[offset:offset + len(magic)] == magic for offset, magic in _AUDIO_MAGIC):
        return True
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0  # MPEG/AAC ADTS sync


def decode_audio(source: bytes | str | BinaryIO, limits: DecodeConfig) -> DecodedAudio:
    """Decode the first audio stream of ``source`` (bytes, a local path, or a file object)."""
    head = _head_bytes(source)
    if not head:
        raise DecodeRejected(RejectReason.EMPTY, "0 bytes")
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        container = av.open(opened, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        reason = RejectReason.DECODE_ERROR if looks_like_audio_container(head) else RejectReason.NOT_AUDIO
        raise DecodeRejected(reason, f"cannot open: {_short(err)}") from err
    with container:
        if not container.streams.audio:
            raise DecodeRejected(RejectReason.NOT_AUDIO, f"no audio stream in {container.format.name}")
        stream = container.streams.audio[0]
        rate, channels = _check_format(stream, limits)
        declared = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        if declared is None and container.duration:
            declared = container.duration / av.time_base
        if declared is not None and declared > limits.max_duration_s * 1.01:
            raise DecodeRejected(RejectReason.TOO_LONG,
                                 f"declared {declared:.0f} s > max {limits.max_duration_s:.0f} s")
        samples, band_hz = _decode_stream(container, stream, limits)
        codec = stream.codec_context.name
        container_name = container.format.name
    if samples.size == 0:
        raise DecodeRejected(RejectReason.EMPTY, "no audio samples decoded")
    duration = samples.size / SAMPLE_RATE
    if duration < limits.min_duration_s:
        raise DecodeRejected(RejectReason.TOO_SHORT, f"{duration:.3f} s < min {limits.min_duration_s} s")
    return DecodedAudio(samples, rate, channels, codec, container_name, duration, band_hz)


def _check_format(stream: av.audio.stream.AudioStream, limits: DecodeConfig) -> tuple[int, int]:
    rate = int(stream.codec_context.sample_rate or 0)
    channels = int(stream.codec_context.channels or 0)
    allowed = limits.allowed_sample_rates_hz
    if allowed is not None and rate not in allowed:
        raise DecodeRejected(RejectReason.UNSUPPORTED_FORMAT, f"sample rate {rate} Hz not in {allowed}")
    if not _MIN_SAMPLE_RATE_HZ <= rate <= _MAX_SAMPLE_RATE_HZ:
        raise DecodeRejected(RejectReason.UNSUPPORTED_FORMAT, f"sample rate {rate} Hz out of range")
    if not 1 <= channels <= limits.max_channels:
        raise DecodeRejected(RejectReason.UNSUPPORTED_FORMAT,
                             f"{channels} channels (max {limits.max_channels})")
    return rate, channels


def _decode_stream(container: av.container.InputContainer, stream: av.audio.stream.AudioStream,
                   limits: DecodeConfig) -> tuple[np.ndarray, float | None]:
    """Decode, average the channels in numpy, resample the mono signal to 16 kHz (float32); also
    the signal bandwidth at the native rate, measured on frames sampled before resampling.

    Channels are averaged here rather than by FFmpeg's downmix: its default matrix adds channels
    at -3 dB each (identical stereo channels come out 3 dB louder and clip), and swresample
    crashes the process on layouts it cannot name (e.g. an 8-channel WAV without a channel mask).
    Decoding stops past the duration limit.

    Frames are copied straight from their planes into a preallocated block of
    ``BLOCK_SAMPLES`` samples; each full block is averaged and resampled in one call and written
    into one growing output array, so the per-frame cost is a single ``memcpy``. The samples are
    bit-identical to averaging and resampling frame by frame (the average is per sample and the
    resampler's output does not depend on how its input is cut).
    """
    max_samples = int(limits.max_duration_s * SAMPLE_RATE)
    blocks = MonoBlocks(_expected_samples(stream))
    try:
        for frame in container.decode(stream):
            blocks.add(frame)
            if blocks.output.size > max_samples:
                raise DecodeRejected(RejectReason.TOO_LONG, f"longer than max {limits.max_duration_s:.0f} s")
        blocks.push_pending()
        if blocks.output.size > max_samples:  # per frame, the check above saw this total last
            raise DecodeRejected(RejectReason.TOO_LONG, f"longer than max {limits.max_duration_s:.0f} s")
        blocks.finish()
    except (av.FFmpegError, ValueError, MemoryError) as err:
        total = blocks.output_after_error()
        raise DecodeRejected(RejectReason.DECODE_ERROR,
                             f"failed after {total / SAMPLE_RATE:.2f} s: {_short(err)}") from err
    if not blocks.output.finite:
        raise DecodeRejected(RejectReason.DECODE_ERROR, "decoded samples are not finite")
    return _trim_to_declared(blocks.output.samples(), stream), blocks.band.bandwidth_hz()


def _expected_samples(stream: av.audio.stream.AudioStream) -> int:
    """Output samples the declared duration promises (0 if unknown): the first allocation."""
    if not stream.duration or not stream.time_base:
        return 0
    return int(float(stream.duration * stream.time_base) * SAMPLE_RATE) + SAMPLE_RATE // 10


_TRIM_TOLERANCE_S = 0.05


def _trim_to_declared(samples: np.ndarray, stream: av.audio.stream.AudioStream) -> np.ndarray:
    """Drop a few tens of ms FFmpeg adds past the declared stream end (short single-page Ogg)."""
    if not stream.duration or not stream.time_base:
        return samples
    declared = int(round(float(stream.duration * stream.time_base) * SAMPLE_RATE))
    excess = samples.size - declared
    if 0 < excess <= _TRIM_TOLERANCE_S * SAMPLE_RATE:
        return samples[:declared]
    return samples


def _head_bytes(source: bytes | str | BinaryIO, n: int = 16) -> bytes:
    if isinstance(source, bytes):
        return source[:n]
    if isinstance(source, str):
        with open(source, "rb") as fh:
            return fh.read(n)
    position = source.tell()
    head = source.read(n)
    source.seek(position)
    return head


def _short(err: BaseException, limit: int = 200) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def encode_flac(samples: np.ndarray, compression: float = 0.5) -> bytes:
    """16-bit FLAC at SAMPLE_RATE. Deterministic: the same samples always give the same bytes."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16", compression_level=compression)
    return buffer.getvalue()


def decode_flac(data: bytes) -> np.ndarray:
    """Inverse of ``encode_flac`` (float32 in [-1, 1])."""
    pcm, _ = sf.read(io.BytesIO(data), dtype="int16")
    return pcm.astype(np.float32) / 32767.0
