"""The decoder's band at the native rate (``orig_bandwidth_hz``, ``decode_blocks.BandSampler``)."""

from __future__ import annotations

import numpy as np
import scipy.signal

from audiomill.audio import decode_audio
from audiomill.config import DecodeConfig
from audiomill.decode_blocks import BandSampler
from audiomill.testing import signals
from audiomill.testing.dedup_set import resample


def _bursts(sr: int, cutoff_hz: float, seconds: float = 4.0, seed: int = 1) -> np.ndarray:
    """Noise bursts low-passed at ``cutoff_hz`` (90 dB stopband) with quiet gaps between them (speech-like on/off)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * sr)) * 0.1
    x *= (np.arange(x.size) // int(0.3 * sr)) % 2 == 0
    x += rng.standard_normal(x.size) * 1e-4  # a noise floor in the gaps
    sos = scipy.signal.ellip(10, 0.1, 90, cutoff_hz, fs=sr, output="sos")  # a sharp edge
    return scipy.signal.sosfilt(sos, x).astype(np.float32)


def test_native_band_sees_what_the_stored_16k_audio_cannot(tmp_path):
    limits = DecodeConfig()
    wide = _bursts(48_000, 12_000)
    narrow = _bursts(8_000, 3_500)
    files = {
        "wide_48k": signals.write_audio(tmp_path / "wide.wav", wide, 48_000),
        "wide_down_to_16k": signals.write_audio(tmp_path / "down.wav", resample(wide, 48_000, 16_000), 16_000),
        "narrow_8k": signals.write_audio(tmp_path / "narrow.wav", narrow, 8_000),
        "narrow_up_to_16k": signals.write_audio(tmp_path / "up.wav", resample(narrow, 8_000, 16_000), 16_000),
    }
    band = {name: decode_audio(str(path), limits).orig_bandwidth_hz for name, path in files.items()}
    assert 11_000 <= band["wide_48k"] <= 13_500, band  # the filter's edge is 50 dB down near 13 kHz
    assert band["wide_down_to_16k"] <= 8_000, band
    assert band["narrow_8k"] / 4_000 >= 0.85, band  # fills its own band
    assert band["narrow_up_to_16k"] / 8_000 <= 0.6, band  # about half of it: the trace of an upsampling


def test_band_sampler_frames_do_not_depend_on_how_the_stream_is_cut_and_stay_bounded():
    sr = 22_050
    x = _bursts(sr, 6_000, seconds=30.0)
    whole, cut = BandSampler(), BandSampler()
    whole.add(x, sr)
    edges = [0, 1, 700, 4_096, 50_001, 50_002, 333_333, x.size]
    for start, stop in zip(edges[:-1], edges[1:]):
        cut.add(x[start:stop], sr)
    assert len(whole._frames) == len(cut._frames) <= BandSampler.MAX_FRAMES
    assert whole._stride == cut._stride > 512  # 30 s of 23 ms frames is more than MAX_FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(whole._frames, cut._frames))
    assert whole.bandwidth_hz() == cut.bandwidth_hz()
    assert 5_000 <= whole.bandwidth_hz() <= 6_500
    assert BandSampler().bandwidth_hz() is None
    short = BandSampler()
    short.add(x[:100], sr)  # less than one frame
    assert short.bandwidth_hz() is None
