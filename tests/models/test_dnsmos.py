"""DNSMOS from speechmos's ONNX model: real speech scores above its noisy copy; batching is exact."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from audiomill import schema
from audiomill.config import MosConfig
from audiomill.models.dnsmos import Dnsmos
from audiomill.pipelines.mos import MosStage, sampled
from audiomill.schema import SAMPLE_RATE
from audiomill.testing import signals
from audiomill.testing.dedup_set import resample


@pytest.fixture(scope="module")
def model() -> Dnsmos:
    return Dnsmos()


@pytest.fixture(scope="module")
def real_clips() -> list[np.ndarray]:
    """Three alsa-utils recordings of a human voice (48 kHz WAV in the Debian package)."""
    clips = []
    for path in [p for p in signals.alsa_clips() if "Noise" not in p.name][:3]:
        audio, sr = signals.read_audio(path)
        clips.append(resample(audio, sr, SAMPLE_RATE))
    return clips


def _noisy(audio: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    rms_db = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2))
    noise = signals.white_noise(audio.size / SAMPLE_RATE, SAMPLE_RATE, rms_db - snr_db, seed=seed)
    return np.clip(audio + noise[:audio.size], -1, 1).astype(np.float32)


def test_noise_lowers_bak_and_ovrl_on_real_speech(model, real_clips):
    noisy = [_noisy(c, 5.0, i) for i, c in enumerate(real_clips)]
    clean, dirty = model.score(real_clips), model.score(noisy)
    assert np.all((clean.ovrl >= 1) & (clean.ovrl <= 5))
    assert np.all(dirty.bak < clean.bak - 0.5), (clean.bak, dirty.bak)
    assert np.all(dirty.ovrl < clean.ovrl), (clean.ovrl, dirty.ovrl)


def test_batched_scores_equal_one_clip_at_a_time(model, real_clips):
    long_clip = np.concatenate(real_clips * 8)  # ~11 s: two windows with a 9.01 s hop? one + tile
    batch = model.score([*real_clips, long_clip, np.zeros(0, np.float32)])
    for i, clip in enumerate([*real_clips, long_clip]):
        assert model.score([clip]).ovrl[0] == pytest.approx(batch.ovrl[i], abs=1e-4)
    assert np.isnan(batch.ovrl[-1])


def test_mos_stage_scores_the_sample_and_leaves_the_rest_null(real_clips):
    keys = [f"k{i:03d}" for i in range(16)]
    audio = [real_clips[i % 3].tobytes() for i in range(16)]
    table = pa.table({schema.KEY: keys, schema.AUDIO: pa.array(audio, pa.large_binary())})
    out = MosStage(MosConfig(coverage="sample", sample_share=0.25))(table)
    chosen = sampled(keys, 0.25)
    assert 0 < chosen.sum() < 16
    mos = out[schema.Q_MOS].to_numpy(zero_copy_only=False)
    assert np.array_equal(~np.isnan(mos), chosen)
    assert out[schema.Q_MOS_MODEL].null_count == 16 - chosen.sum()
    assert np.all(sampled(keys, 0.5)[chosen])  # a larger share is a superset
    assert schema.timing_column("mos") in out.column_names
