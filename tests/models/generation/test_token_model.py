"""The trainable generation model: alignment, learning a phone -> unit mapping, files, phones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiomill.jobs.rounds.generator import phone_sequence
from audiomill.models.generation import token_model as tm
from audiomill.models.generation import token_training as tt
from audiomill.models.tokenizer.espeak_align import phonemes


def _logp(owner: list[int], phones: int, sure: float = 0.9) -> np.ndarray:
    """(frames, phones) log-probabilities where frame t clearly belongs to phone owner[t]."""
    p = np.full((len(owner), phones), (1 - sure) / (phones - 1))
    p[np.arange(len(owner)), owner] = sure
    return np.log(p)


def test_alignment_recovers_durations_and_skips_what_got_no_frames():
    owner = [0, 0, 1, 1, 1, 2, 4, 4]  # phone 3 (a pause) got no frame
    skip = np.array([0.0, 4.0, 4.0, 0.0, 4.0])
    assert tm.monotonic_align(_logp(owner, 5), skip).tolist() == [2, 3, 1, 0, 2]
    # more phones than frames: some must be skipped, and the durations still cover every frame
    durations = tm.monotonic_align(np.log(np.full((3, 7), 1 / 7)), np.full(7, 4.0))
    assert durations.sum() == 3 and (durations >= 0).all()
    # a pause is skipped for free, a phone is not: with equal evidence the pause gives way
    flat = np.log(np.full((2, 3), 1 / 3))
    assert tm.monotonic_align(flat, np.array([4.0, 0.0, 4.0])).tolist() == [1, 0, 1]


def _clip(rng: np.random.Generator, units: dict[str, tuple[int, int]]) -> tuple[list[str], np.ndarray]:
    """A phone sequence and its 'tokens': every phone says its two units, in random durations."""
    names = sorted(units)
    words = [[names[int(k)] for k in rng.integers(0, len(names), rng.integers(2, 5))]
             for _ in range(rng.integers(2, 5))]
    phones, tokens = tm.phone_sequence(words), []
    for p in phones:
        if p == tm.PAUSE:
            tokens += [0] * int(rng.integers(0, 3))
        else:
            d, (a, b) = int(rng.integers(2, 6)), units[p]
            tokens += [a] * (d // 2) + [b] * (d - d // 2)
    return phones, np.asarray(tokens)


def test_generator_learns_which_units_each_phone_says_without_alignments():
    rng = np.random.default_rng(0)
    units = {f"p{i}": (1 + 2 * i, 2 + 2 * i) for i in range(12)}
    train = [_clip(rng, units) for _ in range(120)]
    test = [_clip(rng, units) for _ in range(16)]
    torch.manual_seed(0)
    shape = tm.GeneratorShape(tt.vocabulary([p for p, _ in train]), 25, hidden=48)
    generator = tm.TokenGenerator(tm.TokenGeneratorNet(shape))
    data = tt.examples(generator, [p for p, _ in train], [{}] * len(train), [t for _, t in train])
    tt.fit(generator.net, generator.net, data, tt.FitOptions(steps=150, batch_size=16))
    made = generator.generate([p for p, _ in test], [{}] * len(test))
    learned = np.mean([tt.agreement(m, t) for m, (_, t) in zip(made, test)])
    other = np.mean([tt.agreement(test[(i + 1) % len(test)][1], t) for i, (_, t) in enumerate(test)])
    assert learned > 0.7 and learned > other + 0.4, (learned, other)
    lengths = np.array([len(m) for m in made]) / np.array([len(t) for _, t in test])
    assert 0.6 < np.median(lengths) < 1.5  # the duration head learned how long phones last


def test_saved_generator_loads_to_the_same_output_and_bytes(tmp_path):
    torch.manual_seed(1)
    shape = tm.GeneratorShape((tm.PAD, tm.UNKNOWN, tm.PAUSE, "a", "b"), 16, hidden=16)
    generator = tm.TokenGenerator(tm.TokenGeneratorNet(shape), "tok@sha256:abc")
    generator.save(tmp_path / "one")
    loaded = tm.TokenGenerator.load(tmp_path / "one")
    loaded.save(tmp_path / "two")
    for name in (tm.GENERATOR_JSON, tm.GENERATOR_BIN):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    inputs = [[tm.PAUSE, "a", "b", "zz", tm.PAUSE]], [{"ann_gender": "female"}]  # "zz": unknown phone
    assert loaded.tokenizer == "tok@sha256:abc"
    assert [x.tolist() for x in loaded.generate(*inputs)] == [x.tolist() for x in generator.generate(*inputs)]
    (tmp_path / "one" / tm.GENERATOR_BIN).write_bytes(b"\0" * 8)
    with pytest.raises(ValueError, match="need"):
        tm.TokenGenerator.load(tmp_path / "one")
    with pytest.raises(FileNotFoundError, match="round"):
        tm.TokenGenerator.load(tmp_path / "missing")


def test_text_becomes_espeak_phones_with_optional_pauses():
    words = phonemes("Front Center")
    assert len(words) == 2 and words[0][0] == "f" and all(words)
    assert phone_sequence("Front Center", "en") == [tm.PAUSE, *words[0], tm.PAUSE, *words[1], tm.PAUSE]
    assert phone_sequence("", "en") is None and phone_sequence("hello", "xx-nope") is None
    assert phonemes("Hallo Welt", "de")[0][0] == "h"
