"""decode_audio on generated files of known format and length; every reject reason; FLAC helpers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiomill.audio import (DecodeRejected, decode_audio, decode_flac, encode_flac,
                             looks_like_audio_container)
from audiomill.config import DecodeConfig
from audiomill.schema import SAMPLE_RATE, RejectReason
from audiomill.testing.signals import sine, white_noise, write_audio

DEFAULT_LIMITS = DecodeConfig()
TOLERANCE_S = 0.020


def tone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    """A -20 dBFS tone with a little noise (noise keeps Vorbis/MP3 packets realistic in size)."""
    mono = sine(440.0, seconds, sr) + white_noise(seconds, sr, level_dbfs=-40.0, seed=sr)
    if channels == 1:
        return mono
    return np.stack([mono * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1)


def reason_of(source, limits: DecodeConfig = DEFAULT_LIMITS) -> str:
    with pytest.raises(DecodeRejected) as info:
        decode_audio(source, limits)
    assert info.value.detail
    assert str(info.value).startswith(info.value.reason.value)
    return info.value.reason.value


@pytest.mark.parametrize("fmt, sr, channels, codec", [
    ("wav", 16_000, 1, "pcm_s16le"),
    ("wav", 44_100, 1, "pcm_s16le"),
    ("wav", 48_000, 2, "pcm_s16le"),
    ("flac", 22_050, 1, "flac"),
    ("flac", 48_000, 2, "flac"),
    ("ogg", 44_100, 1, "vorbis"),
    ("mp3", 44_100, 1, "mp3"),
    ("mp3", 48_000, 2, "mp3"),
])
def test_decode_records_original_format_and_gives_16k_mono_float32(tmp_path, fmt, sr, channels, codec):
    seconds = 2.0
    path = write_audio(tmp_path / f"clip.{fmt}", tone(seconds, sr, channels), sr)
    decoded = decode_audio(str(path), DEFAULT_LIMITS)
    assert decoded.orig_sample_rate == sr
    assert decoded.orig_channels == channels
    assert decoded.codec.startswith(codec)  # PyAV names the float mp3 decoder "mp3float"
    assert decoded.container
    assert decoded.samples.dtype == np.float32
    assert decoded.samples.ndim == 1
    assert decoded.duration_s == pytest.approx(seconds, abs=TOLERANCE_S)
    assert decoded.orig_duration_s == pytest.approx(decoded.samples.size / SAMPLE_RATE)
    assert np.abs(decoded.samples).max() <= 1.0
    rms = float(np.sqrt(np.mean(decoded.samples[SAMPLE_RATE // 10:-SAMPLE_RATE // 10] ** 2)))
    assert rms > 0.03  # the tone survived (levels are checked in the downmix tests)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_mono_level_is_preserved(tmp_path, fmt):
    path = write_audio(tmp_path / f"mono.{fmt}", tone(2.0, 44_100), 44_100)
    decoded = decode_audio(str(path), DEFAULT_LIMITS)
    rms = float(np.sqrt(np.mean(decoded.samples[SAMPLE_RATE // 10:-SAMPLE_RATE // 10] ** 2)))
    assert rms == pytest.approx(0.1, rel=0.05)  # -20 dBFS sine + -40 dBFS noise


@pytest.mark.parametrize("channels", [2, 4])
def test_identical_channels_downmix_to_the_mono_signal(tmp_path, channels):
    """Dual-mono files are common in crawled audio; the mix must not gain level or clip."""
    mono = sine(440.0, 1.0, SAMPLE_RATE, level_dbfs=-4.0)  # peak 0.89
    mono_path = tmp_path / "mono.wav"
    multi_path = tmp_path / f"multi{channels}.wav"
    sf.write(mono_path, mono, SAMPLE_RATE, subtype="PCM_16")
    sf.write(multi_path, np.stack([mono] * channels, axis=1), SAMPLE_RATE, subtype="PCM_16")
    from_mono = decode_audio(str(mono_path), DEFAULT_LIMITS).samples
    from_multi = decode_audio(str(multi_path), DEFAULT_LIMITS).samples
    assert np.abs(from_multi).max() <= 1.0
    np.testing.assert_allclose(from_multi, from_mono, atol=2 / 32767)


@pytest.mark.parametrize("sr", [16_000, 44_100])
def test_short_single_page_ogg_decodes_to_its_declared_duration(tmp_path, sr):
    """A 1.5 s Vorbis tone fits in one Ogg page; libvorbis and the container both say 1.5 s."""
    path = write_audio(tmp_path / "short.ogg", sine(440.0, 1.5, sr), sr)
    assert sf.info(str(path)).duration == pytest.approx(1.5)
    decoded = decode_audio(str(path), DEFAULT_LIMITS)
    assert decoded.duration_s == pytest.approx(1.5, abs=TOLERANCE_S)


def test_duration_follows_the_source_at_each_rate(tmp_path):
    for sr, seconds in ((8_000, 0.73), (16_000, 1.234), (44_100, 0.5), (96_000, 0.9)):
        path = write_audio(tmp_path / f"d{sr}.wav", tone(seconds, sr), sr)
        decoded = decode_audio(str(path), DEFAULT_LIMITS)
        assert abs(decoded.samples.size - seconds * SAMPLE_RATE) <= 2, sr


def test_path_bytes_and_file_object_give_identical_samples(tmp_path):
    path = write_audio(tmp_path / "c.flac", tone(1.0, 44_100, 2), 44_100)
    from_path = decode_audio(str(path), DEFAULT_LIMITS)
    from_bytes = decode_audio(path.read_bytes(), DEFAULT_LIMITS)
    with open(path, "rb") as fh:
        from_file = decode_audio(fh, DEFAULT_LIMITS)
    np.testing.assert_array_equal(from_path.samples, from_bytes.samples)
    np.testing.assert_array_equal(from_path.samples, from_file.samples)
    assert (from_path.orig_sample_rate, from_path.orig_channels, from_path.codec) == \
        (from_bytes.orig_sample_rate, from_bytes.orig_channels, from_bytes.codec)


def test_empty_file_and_empty_bytes(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert reason_of(str(path)) == RejectReason.EMPTY.value
    assert reason_of(b"") == RejectReason.EMPTY.value


def test_text_renamed_to_wav_is_not_audio(tmp_path):
    path = tmp_path / "page.wav"
    path.write_text("<html><body>404 Not Found</body></html>\n" * 20)
    assert reason_of(str(path)) == RejectReason.NOT_AUDIO.value


def test_random_bytes_are_not_audio(tmp_path):
    data = b"\x00" + np.random.default_rng(7).bytes(8191)  # leading 0x00: no MPEG sync word
    assert not looks_like_audio_container(data[:16])
    path = tmp_path / "random.wav"
    path.write_bytes(data)
    assert reason_of(str(path)) == RejectReason.NOT_AUDIO.value
    assert reason_of(data) == RejectReason.NOT_AUDIO.value


def test_truncated_wav_is_a_decode_error(tmp_path):
    whole = write_audio(tmp_path / "whole.wav", tone(1.0, 16_000), 16_000).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[:20])
    assert whole[:4] == b"RIFF"
    assert reason_of(str(cut)) == RejectReason.DECODE_ERROR.value


def test_too_long(tmp_path):
    path = write_audio(tmp_path / "long.wav", tone(3.0, 16_000), 16_000)
    assert reason_of(str(path), DecodeConfig(max_duration_s=1.0)) == RejectReason.TOO_LONG.value
    assert decode_audio(str(path), DecodeConfig(max_duration_s=3.5)).duration_s == pytest.approx(3.0)


def test_too_short(tmp_path):
    path = write_audio(tmp_path / "blip.wav", tone(0.05, 16_000), 16_000)
    assert reason_of(str(path), DecodeConfig(min_duration_s=0.1)) == RejectReason.TOO_SHORT.value
    assert decode_audio(str(path), DecodeConfig(min_duration_s=0.04)).duration_s == pytest.approx(0.05)


def test_sample_rate_not_allowed_is_unsupported_format(tmp_path):
    path = write_audio(tmp_path / "r.wav", tone(0.5, 22_050), 22_050)
    limits = DecodeConfig(allowed_sample_rates_hz=[16_000, 48_000])
    assert reason_of(str(path), limits) == RejectReason.UNSUPPORTED_FORMAT.value
    allowed = DecodeConfig(allowed_sample_rates_hz=[22_050])
    assert decode_audio(str(path), allowed).orig_sample_rate == 22_050


def test_too_many_channels_is_unsupported_format(tmp_path):
    path = tmp_path / "quad.wav"
    sf.write(path, tone(0.5, 16_000, channels=4), 16_000, subtype="PCM_16")
    assert reason_of(str(path), DecodeConfig(max_channels=2)) == RejectReason.UNSUPPORTED_FORMAT.value
    decoded = decode_audio(str(path), DecodeConfig(max_channels=4))
    assert decoded.orig_channels == 4
    assert decoded.samples.ndim == 1


def test_looks_like_audio_container():
    assert looks_like_audio_container(b"RIFF\x00\x00\x00\x00WAVE")
    assert looks_like_audio_container(b"fLaC")
    assert looks_like_audio_container(b"\x00\x00\x00\x20ftypM4A ")
    assert looks_like_audio_container(b"\xff\xfb\x90\x00")
    assert not looks_like_audio_container(b"<html>")
    assert not looks_like_audio_container(b"")


def test_encode_flac_is_deterministic_and_16k_mono():
    samples = tone(1.0, SAMPLE_RATE)
    first = encode_flac(samples)
    assert first == encode_flac(samples.copy())
    assert first[:4] == b"fLaC"
    info = sf.info(io.BytesIO(first))
    assert (info.samplerate, info.channels, info.frames) == (SAMPLE_RATE, 1, samples.size)


def test_flac_round_trip_within_one_lsb_for_moderate_levels():
    samples = np.random.default_rng(3).uniform(-0.5, 0.5, SAMPLE_RATE).astype(np.float32)
    restored = decode_flac(encode_flac(samples))
    assert restored.dtype == np.float32
    assert restored.shape == samples.shape
    assert np.abs(restored - samples).max() <= 1 / 32767


def test_flac_round_trip_within_one_lsb_at_full_scale():
    samples = np.linspace(-1.0, 1.0, SAMPLE_RATE + 1, dtype=np.float32)
    restored = decode_flac(encode_flac(samples))
    assert np.abs(restored - samples).max() <= 1 / 32767


def test_flac_encoding_clips_instead_of_wrapping():
    loud = np.array([1.5, -1.5, 0.0], dtype=np.float32)
    restored = decode_flac(encode_flac(loud))
    assert restored[0] > 0.99 and restored[1] < -0.99 and restored[2] == 0.0


def test_write_audio_gives_files_decode_audio_reads(tmp_path: Path):
    """Guard for the fixtures above: the helper writes the format the suffix names."""
    path = write_audio(tmp_path / "x.flac", tone(0.3, 16_000), 16_000)
    assert path.read_bytes()[:4] == b"fLaC"
