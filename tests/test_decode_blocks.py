"""Block-wise decoding (audiomill.decode_blocks) gives the same bits as converting frame by frame.

The reference below is the frame-by-frame loop audiomill used before blocks: per frame,
``to_ndarray``, average the channels in numpy, wrap as a mono frame, resample. Every sample
format / layout / rate path is compared byte for byte, across block boundaries, and so are the
reject reasons and details of the duration limit and of a damaged stream.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from audiomill.audio import DecodeRejected, decode_audio
from audiomill.config import DecodeConfig
from audiomill.decode_blocks import BLOCK_SAMPLES, OutputBuffer, mono_of
from audiomill.schema import SAMPLE_RATE
from audiomill.testing import signals

_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2.0**31, np.dtype(np.int64): 2.0**63}


def _reference_mono(frame: av.AudioFrame) -> np.ndarray:
    channels, data = frame.layout.nb_channels, frame.to_ndarray()
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128.0) / 128.0
    elif data.dtype in _SCALE:
        data = (data / _SCALE[data.dtype]).astype(np.float32)
    else:
        data = data.astype(np.float32, copy=False)
    return data[0] if channels == 1 else data.mean(axis=0, dtype=np.float32)


def frame_by_frame(path: Path) -> np.ndarray:
    """The pre-block decode loop (without the duration limit and trimming)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.audio[0]):
            mono = av.AudioFrame.from_ndarray(_reference_mono(frame)[None, :], format="flt", layout="mono")
            mono.sample_rate = frame.sample_rate
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(mono)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _signal(seconds: float, sr: int, channels: int) -> np.ndarray:
    base = signals.music_like(seconds, sr, seed=sr) + signals.white_noise(seconds, sr, -35.0, seed=sr + 1)
    if channels == 1:
        return base
    return np.stack([base * (0.3 + 0.7 * c / channels) + signals.white_noise(seconds, sr, -40.0, seed=c)
                     for c in range(channels)], axis=1).astype(np.float32)


# (name, sample rate, channels, soundfile subtype or None for write_audio's codec); 4 s is more
# than one block (65,536 samples per channel) at every rate here
CASES = [
    ("s16_16k.wav", 16_000, 1, "PCM_16"), ("s16_44k_stereo.wav", 44_100, 2, "PCM_16"),
    ("u8_22k_stereo.wav", 22_050, 2, "PCM_U8"), ("s32_48k_3ch.wav", 48_000, 3, "PCM_32"),
    ("s24_32k_stereo.wav", 32_000, 2, "PCM_24"), ("float_44k_stereo.wav", 44_100, 2, "FLOAT"),
    ("double_8k.wav", 8_000, 1, "DOUBLE"), ("s16_48k_8ch.wav", 48_000, 8, "PCM_16"),
    ("flac_48k_stereo.flac", 48_000, 2, None), ("flac_11k.flac", 11_025, 1, None),
    ("ogg_48k_6ch.ogg", 48_000, 6, None), ("mp3_44k_stereo.mp3", 44_100, 2, None),
    ("opus_48k.opus", 48_000, 1, None), ("m4a_22k.m4a", 22_050, 1, None),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("blocks")
    for name, sr, channels, subtype in CASES:
        audio = _signal(4.0, sr, channels)
        if subtype:
            sf.write(root / name, audio, sr, subtype=subtype)
        else:
            signals.write_audio(root / name, audio, sr)
    for clip in signals.alsa_clips()[:3]:  # real recordings (alsa-utils)
        shutil.copyfile(clip, root / f"alsa_{clip.name}")
    return root


def test_block_decode_is_bit_identical_to_frame_by_frame(corpus: Path) -> None:
    paths = sorted(corpus.iterdir())
    assert len(paths) >= len(CASES)
    for path in paths:
        decoded = decode_audio(str(path), DecodeConfig()).samples
        reference = frame_by_frame(path)
        assert decoded.dtype == np.float32
        # decode_audio may drop up to 50 ms FFmpeg adds past the declared end (short Ogg only)
        assert reference.size - 800 <= decoded.size <= reference.size, path.name
        assert decoded.tobytes() == reference[: decoded.size].tobytes(), path.name


def test_duration_limit_matches_frame_by_frame_totals(corpus: Path) -> None:
    path = corpus / "s16_44k_stereo.wav"
    total = frame_by_frame(path).size / SAMPLE_RATE
    assert decode_audio(str(path), DecodeConfig(max_duration_s=total + 0.01)).samples.size > 0
    with pytest.raises(DecodeRejected) as info:
        decode_audio(str(path), DecodeConfig(max_duration_s=1.0))
    assert info.value.reason.value == "too_long"


def test_damaged_stream_reports_the_seconds_decoded_before_the_error(corpus: Path, tmp_path) -> None:
    data = (corpus / "flac_48k_stereo.flac").read_bytes()
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(data[: len(data) // 2] + bytes(range(256)) * 64 + data[len(data) // 2:])
    try:
        decoded = decode_audio(str(damaged), DecodeConfig())
    except DecodeRejected as rejected:  # FFmpeg may skip the bad bytes or stop at them
        assert rejected.reason.value == "decode_error"
        assert "failed after" in rejected.detail
    else:
        assert decoded.samples.size > SAMPLE_RATE


def test_mono_of_matches_per_frame_average_for_each_layout() -> None:
    rng = np.random.default_rng(1)
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        packed = rng.integers(info.min, info.max, size=(1, 2 * 5000), dtype=dtype)
        expected = (packed.reshape(-1, 2).T / _SCALE[np.dtype(dtype)]).astype(np.float32).mean(
            axis=0, dtype=np.float32)
        assert mono_of(packed, 2, planar=False).tobytes() == expected.tobytes()
    planar = rng.standard_normal((3, 4000)).astype(np.float32)
    assert mono_of(planar, 3, planar=True).tobytes() == planar.mean(axis=0, dtype=np.float32).tobytes()


def test_output_buffer_grows_and_flags_non_finite_samples() -> None:
    buffer = OutputBuffer(10)
    pieces = [np.arange(n, dtype=np.float32) for n in (7, BLOCK_SAMPLES, 3)]
    for piece in pieces:
        buffer.append(piece)
    assert buffer.finite
    assert buffer.samples().tobytes() == np.concatenate(pieces).tobytes()
    buffer.append(np.array([np.nan], np.float32))
    assert not buffer.finite
