"""Duplicate clusters keep the best-quality copy; byte copies are ``duplicate_exact``."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pytest

from audiomill import schema
from audiomill.config import DedupConfig
from audiomill.curation.dedup.cluster import Edge, Node, resolve, AUDIO, EXACT
from audiomill.curation.dedup.keep_score import keep_scores
from audiomill.schema import SAMPLE_RATE
from audiomill.testing import signals
from audiomill.testing.dedup_eval import files_to_decisions
from audiomill.testing.dedup_set import resample

SENTENCE = "The old lighthouse keeper climbed the stairs every night to light the lamp."


def _write_mp3(path: Path, audio: np.ndarray, sr: int, bit_rate: int) -> Path:
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=sr)
        stream.bit_rate, stream.layout = bit_rate, "mono"
        frame = av.AudioFrame.from_ndarray(audio[None, :].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> dict[str, Path]:
    """One sentence as a pristine 16 kHz WAV, a 64 kbps MP3, a noisy copy and an 11 kHz resample."""
    root = tmp_path_factory.mktemp("copies")
    audio, sr = signals.espeak(SENTENCE, "en+f3")
    clean = np.concatenate([signals.silence(0.5, SAMPLE_RATE), resample(audio, sr, SAMPLE_RATE),
                            signals.silence(0.5, SAMPLE_RATE)])
    rms_db = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2))
    noise = signals.white_noise(clean.size / SAMPLE_RATE, SAMPLE_RATE, rms_db - 10.0, seed=3)
    paths = {
        "original": signals.write_audio(root / "c_original.wav", clean, SAMPLE_RATE),
        "mp3": _write_mp3(root / "a_mp3.mp3", clean, SAMPLE_RATE, 64_000),
        "noisy": signals.write_audio(root / "b_noisy.wav", np.clip(clean + noise[:clean.size], -1, 1), SAMPLE_RATE),
        "resampled": signals.write_audio(root / "d_resampled.wav", resample(clean, SAMPLE_RATE, 11_025), 11_025),
    }
    paths["byte_copy"] = Path(shutil.copyfile(paths["original"], root / "e_copy.wav"))
    return paths


def _by_name(segments: pa.Table, copies: dict[str, Path]) -> dict[str, dict]:
    names = {str(p): n for n, p in copies.items()}
    return {names[r[schema.SOURCE_URI]]: r for r in segments.to_pylist()}


def test_cluster_keeps_the_pristine_original_and_labels_the_byte_copy_exact(copies):
    segments, decisions = files_to_decisions([str(p) for p in copies.values()], DedupConfig())
    rows = _by_name(segments, copies)
    assert set(rows) == set(copies), "each file should give one segment"
    by_name = {name: decisions[row[schema.KEY]] for name, row in rows.items()}
    kept = [name for name, d in by_name.items() if d.kept]
    assert len(kept) == 1 and kept[0] in ("original", "byte_copy"), by_name
    copy = "byte_copy" if kept[0] == "original" else "original"
    assert by_name[copy].reason == "duplicate_exact"
    for name in ("mp3", "noisy", "resampled"):
        assert by_name[name].reason == "duplicate_audio", (name, by_name[name])
        assert by_name[name].duplicate_of == rows[kept[0]][schema.KEY]
    score = {name: row[schema.DEDUP_KEEP_SCORE] for name, row in rows.items()}
    assert score["original"] == score["byte_copy"] > max(score["mp3"], score["noisy"], score["resampled"])


def test_keep_score_ranks_each_defect_below_the_clean_lossless_row():
    table = pa.table({
        schema.Q_BANDWIDTH_HZ: [7900.0, 7900.0, 7900.0, 3900.0, 7900.0, 7900.0],
        schema.Q_SNR_DB: [45.0, 45.0, 10.0, 45.0, 45.0, 45.0],
        schema.Q_CLIPPING_RATIO: [0.0, 0.0, 0.0, 0.0, 0.02, 0.0],
        schema.ORIG_CODEC: ["flac", "mp3", "pcm_s16le", "pcm_s16le", "pcm_s16le", "flac"],
        schema.SOURCE_BYTES: [100_000, 40_000, 100_000, 100_000, 100_000, 100_000],
        schema.ORIG_DURATION_S: [5.0] * 6,
        schema.Q_MOS: [None, None, None, None, None, 2.0],
    })
    scores = keep_scores(table)
    assert np.argmax(scores) == 0 and np.all(scores[1:] < scores[0])
    assert np.isfinite(scores).all()
    no_columns = keep_scores(pa.table({schema.KEY: ["a", "b"]}))
    assert no_columns[0] == no_columns[1]  # nothing measured: the tie goes to duration, then key


def test_a_dropped_member_with_a_byte_identical_twin_is_duplicate_exact():
    nodes = {"flac": Node("flac", 5.0, 3.0), "wav": Node("wav", 5.0, 2.0), "wav_copy": Node("wav_copy", 5.0, 2.0),
             "mp3": Node("mp3", 5.1, 1.0)}
    edges = [Edge("wav", "wav_copy", EXACT), Edge("flac", "wav", AUDIO), Edge("mp3", "wav_copy", AUDIO)]
    decisions = resolve(nodes, edges)
    assert decisions["flac"].kept
    for key in ("wav", "wav_copy"):
        assert decisions[key].reason == "duplicate_exact" and decisions[key].duplicate_of == "flac"
    assert "exact duplicate of wav" in decisions["wav_copy"].detail
    assert decisions["mp3"].reason == "duplicate_audio"


def test_noise_on_a_narrowband_recording_does_not_win_the_cluster():
    """White noise at 20 dB SNR on 8 kHz-native speech (a telephone prompt) filled the empty
    4-8 kHz band, so the noisy copy measured full-band and out-scored the pristine original in
    most real clusters of ``benchmarks/dedup_real.py``."""
    from audiomill.curation.quality import segment_metrics

    audio, sr = signals.espeak(SENTENCE, "en+m3")
    original = resample(resample(audio, sr, 8_000), 8_000, SAMPLE_RATE)
    rms_db = 10 * np.log10(np.mean(original.astype(np.float64) ** 2))
    noisy = np.clip(original + signals.white_noise(original.size / SAMPLE_RATE, SAMPLE_RATE, rms_db - 20.0,
                                                   seed=5)[:original.size], -1, 1)
    metrics = segment_metrics(np.concatenate([original, noisy]), np.array([0, original.size, 2 * original.size]))
    assert metrics[schema.Q_SIGNAL_BANDWIDTH_HZ][1] < 4500.0, metrics[schema.Q_SIGNAL_BANDWIDTH_HZ]
    assert metrics[schema.Q_BANDWIDTH_HZ][1] == 8000.0  # the hiss does reach Nyquist: not "narrowband"
    table = pa.table({**{name: metrics[name] for name in (schema.Q_BANDWIDTH_HZ, schema.Q_SIGNAL_BANDWIDTH_HZ,
                                                         schema.Q_SNR_DB, schema.Q_CLIPPING_RATIO)},
                      schema.ORIG_CODEC: ["pcm_s16le"] * 2})
    scores = keep_scores(table)
    assert scores[0] > scores[1], (scores, metrics)


@pytest.mark.parametrize("native_rate", [8_000, 22_050])
def test_a_resampled_copy_at_16k_does_not_beat_its_original_at_another_rate(tmp_path, native_rate):
    """The stored 16 kHz audio of an 8 kHz original and of its copy upsampled to 16 kHz hold the
    same content (likewise a 22 kHz original and its copy downsampled to 16 kHz), so measurement
    noise used to pick the copy: in ``benchmarks/dedup_real.py`` the copies won 26 of 32 real
    clusters. The decoder's band at the native rate (``orig_bandwidth_hz``) tells them apart."""
    audio, sr = signals.espeak(SENTENCE, "en+m3")  # 22.05 kHz, content up to about 10 kHz
    original = resample(audio, sr, native_rate)
    at_16k = resample(original, native_rate, SAMPLE_RATE)
    paths = {
        "original": signals.write_audio(tmp_path / "z_original.wav", original, native_rate),
        "quieter": signals.write_audio(tmp_path / "a_quieter.wav", at_16k * 10 ** (-6 / 20), SAMPLE_RATE),
        "same_level": signals.write_audio(tmp_path / "b_same.wav", at_16k, SAMPLE_RATE),
        "rs11k": signals.write_audio(tmp_path / "c_rs11k.wav", resample(original, native_rate, 11_025), 11_025),
    }
    segments, decisions = files_to_decisions([str(p) for p in paths.values()], DedupConfig())
    rows = _by_name(segments, paths)
    kept = [name for name, row in rows.items() if decisions[row[schema.KEY]].kept]
    assert kept == ["original"], ({n: r[schema.DEDUP_KEEP_SCORE] for n, r in rows.items()},
                                  {n: r[schema.ORIG_BANDWIDTH_HZ] for n, r in rows.items()})
