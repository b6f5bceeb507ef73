"""UniqueSpeech: new random utterances, a planted share of exact repeats, deterministic per seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from audiomill.testing.corpus import LONG_TRUTH_NAME, make_long_corpus
from audiomill.testing.speech_pool import UniqueSpeech, random_sentence


def test_utterances_are_new_except_the_planted_repeats() -> None:
    speech = UniqueSpeech(seed=3, duplicate_rate=0.2)
    items = [speech() for _ in range(15)]
    distinct = {item[0].tobytes() for item in items}
    assert len(distinct) == len(items) - speech.repeats
    assert 0 < speech.repeats < 8
    for audio, first_s, last_s in items:
        assert audio.dtype == np.float32 and 0 <= first_s < last_s <= audio.size / 16_000


def test_same_seed_same_speech_and_sentences_vary() -> None:
    a, b = UniqueSpeech(seed=5), UniqueSpeech(seed=5)
    assert [a()[0].tobytes() for _ in range(2)] == [b()[0].tobytes() for _ in range(2)]
    rng = np.random.default_rng(0)
    assert len({random_sentence(rng) for _ in range(50)}) == 50


def test_long_corpus_with_unique_speech(tmp_path: Path) -> None:
    paths = make_long_corpus(tmp_path, hours=0.02, seed=1, unique_speech=True)
    truth = json.loads((tmp_path / LONG_TRUTH_NAME).read_text())
    assert truth["unique_speech"] is True
    assert sum(f["duration_s"] for f in truth["files"]) >= 72.0
    assert all(f["speech_spans"] for f in truth["files"]) and len(paths) == len(truth["files"])
