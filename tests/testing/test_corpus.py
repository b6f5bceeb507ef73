"""The demo and long corpora: every promised case exists, the truth is honest, output is deterministic."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from audiomill.testing import signals
from audiomill.testing.corpus import (
    KEPT,
    KINDS,
    LONG_TRUTH_NAME,
    TRUTH_NAME,
    CorpusTruth,
    make_demo_corpus,
    make_long_corpus,
)


def _tree_digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> CorpusTruth:
    return make_demo_corpus(tmp_path_factory.mktemp("demo"), seed=0)


def test_every_kind_and_outcome_is_present(corpus: CorpusTruth) -> None:
    assert set(corpus.by_kind()) == set(KINDS)
    assert set(corpus.by_expect()) == {
        "kept", "reject:empty", "reject:decode_error", "reject:not_audio", "reject:no_speech",
        "reject:duplicate_exact", "reject:duplicate_audio",
    }
    assert all(outcome == KEPT or outcome.startswith("reject:") for f in corpus.files for outcome in f.expect)


def test_formats_rates_and_layout(corpus: CorpusTruth) -> None:
    speech = [f for f in corpus.files if f.kind == "speech"]
    wav_rates = {f.sample_rate for f in speech if f.format == "wav" and f.path.endswith(".wav")}
    assert {16_000, 22_050, 44_100, 48_000} <= wav_rates
    assert any(f.channels == 2 and f.format == "wav" for f in speech)
    encoders = signals.available_encoders()
    expected_formats = {fmt for fmt, encoder in encoders.items() if encoder is not None}
    assert {"wav", "flac", "ogg"} <= expected_formats
    assert {f.format for f in speech} == expected_formats
    assert corpus.encoders == encoders
    top_dirs = {f.path.split("/")[0] for f in corpus.files}
    assert top_dirs == {"speech", "noise", "dups", "broken"}
    assert (corpus.root / "README.txt").is_file() and "README.txt" in corpus.ignored


def test_speech_cases(corpus: CorpusTruth) -> None:
    voices = {f.voice for f in corpus.files if f.kind == "speech"}
    assert {"en-us", "de", "es", "en+f3", "fr+f2"} <= voices
    two = corpus.get("speech/en/two_utterances_16k.wav")
    assert len(two.speech_spans) == 2
    assert two.speech_spans[1][0] - two.speech_spans[0][1] >= 2.0
    long = corpus.get("speech/en/long_40s_16k.flac")
    assert 38.0 <= long.duration_s <= 48.0 and len(long.speech_spans) >= 8
    gaps = [b[0] - a[1] for a, b in zip(long.speech_spans, long.speech_spans[1:])]
    assert 0.2 < min(gaps) and max(gaps) < 1.5
    if signals.alsa_clips():
        real = [f for f in corpus.files if f.path.startswith("speech/real/")]
        assert len(real) == len(signals.alsa_clips()) - 1 and all(f.expect == [KEPT] for f in real)
        assert corpus.get("noise/alsa_Noise.wav").expect == ["reject:no_speech"]
    misnamed = corpus.get("speech/en/en_mp3_named_wav.wav")
    assert misnamed.format == "mp3" and misnamed.expect == [KEPT]
    assert (corpus.root / misnamed.path).read_bytes()[:3] != b"RIFF"


def test_duplicates(corpus: CorpusTruth) -> None:
    dups = corpus.by_kind()["duplicate"]
    assert {Path(f.path).suffix for f in dups} >= {".wav", ".flac"}
    for dup in dups:
        source = corpus.get(dup.duplicate_of)
        assert source.kind == "speech" and dup.text == source.text
    copy = corpus.get("dups/en_f3_22k_copy.wav")
    assert copy.sha256 == corpus.get(copy.duplicate_of).sha256
    original, _ = sf.read(corpus.root / copy.duplicate_of, dtype="int16")
    reencoded, _ = sf.read(corpus.root / "dups/en_f3_22k.flac", dtype="int16")
    assert np.array_equal(original, reencoded)


def test_truth_matches_disk(corpus: CorpusTruth) -> None:
    on_disk = _tree_digests(corpus.root)
    assert set(on_disk) == {f.path for f in corpus.files} | set(corpus.ignored)
    for entry in corpus.files:
        assert on_disk[entry.path] == entry.sha256, entry.path
        assert (corpus.root / entry.path).stat().st_size == entry.bytes
    assert (corpus.root / "broken/empty.wav").stat().st_size == 0
    assert CorpusTruth.load(corpus.root).to_json() == corpus.to_json()
    assert json.loads((corpus.root / TRUTH_NAME).read_text())["files"][0]["path"] == corpus.files[0].path


def test_spans_lie_inside_durations(corpus: CorpusTruth) -> None:
    for entry in corpus.files:
        spans = entry.speech_spans
        if entry.kind in ("speech", "duplicate"):
            assert spans, entry.path
        if entry.kind in ("noise", "music", "silence", "tone"):
            assert not spans, entry.path
        for start, end in spans:
            assert 0.0 <= start < end <= entry.duration_s + 1e-6, entry.path
        assert spans == sorted(spans)


def test_pyav_agrees_with_truth(corpus: CorpusTruth) -> None:
    """Files promised to decode decode; files promised to fail cannot be opened or hold 0 samples."""
    failing = {"reject:empty", "reject:decode_error", "reject:not_audio"}
    for entry in corpus.files:
        path = corpus.root / entry.path
        if set(entry.expect) <= failing:
            try:
                audio, _ = signals.read_audio(path)
            except av.error.InvalidDataError:
                continue
            assert len(audio) == 0 and entry.expect == ["reject:empty"], entry.path
        else:
            audio, sr = signals.read_audio(path)
            assert sr == entry.sample_rate and abs(len(audio) / sr - entry.duration_s) < 1e-3, entry.path


def test_same_seed_gives_identical_bytes(corpus: CorpusTruth, tmp_path: Path) -> None:
    again = make_demo_corpus(tmp_path / "again", seed=0)
    assert _tree_digests(again.root) == _tree_digests(corpus.root)
    other = make_demo_corpus(tmp_path / "other", seed=1)
    first = _tree_digests(corpus.root)
    changed = {p for p, d in _tree_digests(other.root).items() if first.get(p) != d}
    assert "speech/en/en_us_16k.wav" in changed


def test_long_corpus(tmp_path: Path) -> None:
    paths = make_long_corpus(tmp_path, hours=0.05, seed=0)
    infos = [sf.info(p) for p in paths]
    assert sum(info.duration for info in infos) >= 180.0
    assert all(info.samplerate == 16_000 and info.channels == 1 for info in infos)
    truth = json.loads((tmp_path / LONG_TRUTH_NAME).read_text())
    assert [f["path"] for f in truth["files"]] == [p.name for p in paths]
    for entry, info in zip(truth["files"], infos, strict=True):
        assert entry["speech_spans"]
        assert all(0 <= s < e <= info.duration + 1e-6 for s, e in entry["speech_spans"])


def test_trim_silence_bounds_finds_a_known_burst() -> None:
    sr = 16_000
    burst = signals.sine(300, 0.5, sr, -20)
    audio = np.concatenate([signals.silence(1.0, sr), burst, signals.silence(1.0, sr)])
    assert signals.trim_silence_bounds(audio, sr) == pytest.approx((1.0, 1.5), abs=0.011)
    with pytest.raises(ValueError):
        signals.trim_silence_bounds(signals.silence(1.0, sr), sr)


def test_signal_levels() -> None:
    sr = 16_000
    for make in (lambda: signals.sine(440, 1, sr, -20), lambda: signals.white_noise(1, sr, -20, seed=3)):
        audio = make()
        assert audio.dtype == np.float32 and len(audio) == sr
        assert 20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) == pytest.approx(-20, abs=0.1)
    music = signals.music_like(2.0, sr, seed=1)
    assert music.dtype == np.float32 and np.abs(music).max() <= 1.0
    assert np.array_equal(music, signals.music_like(2.0, sr, seed=1))


def test_espeak_missing_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signals.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt package 'espeak-ng'"):
        signals.espeak("hello")
