"""speech_spans on synthetic probabilities with known answers (frame_s = 0.1 s for round numbers)."""

from __future__ import annotations

import numpy as np
import pytest

from audiomill.config import VadConfig
from audiomill.models.speech_spans import (hysteresis_mask, speech_spans,
                                              split_at_quietest_point)

FRAME_S = 0.1
SR = 1000  # 100 samples per synthetic frame


def probs_with(frame_count: int, *blocks: tuple[int, int, float]) -> np.ndarray:
    probs = np.zeros(frame_count)
    for first, stop, value in blocks:
        probs[first:stop] = value
    return probs


def run(probs: np.ndarray, **overrides: float):
    cfg = VadConfig(**overrides)
    audio = np.zeros(int(probs.size * FRAME_S * SR), dtype=np.float32)
    return speech_spans(probs, audio, cfg, frame_s=FRAME_S, sample_rate=SR)


def spans(result) -> list[tuple[float, float]]:
    return [(round(s, 6), round(e, 6)) for s, e in zip(result.starts_s, result.ends_s)]


def test_one_block_is_padded_and_counted():
    result = run(probs_with(100, (20, 40, 0.9)))
    assert spans(result) == [(1.9, 4.1)]
    assert result.speech_ratio == pytest.approx(0.2)
    # frames centred in [1.9, 4.1] are 19..40: 22 frames, 20 above threshold
    np.testing.assert_allclose(result.segment_speech_ratios, [20 / 22])
    assert result.dropped_s == 0.0
    assert result.starts_s.dtype == np.float64


def test_hysteresis_holds_speech_between_thresholds_but_never_starts_it():
    probs = probs_with(100, (0, 10, 0.4), (20, 40, 0.9), (40, 50, 0.4), (50, 60, 0.3))
    np.testing.assert_array_equal(np.flatnonzero(hysteresis_mask(probs, 0.5)), np.arange(20, 50))
    assert spans(run(probs)) == [(1.9, 5.1)]


def test_neg_threshold_is_clamped_at_one_hundredth():
    probs = probs_with(10, (0, 3, 0.12), (3, 6, 0.02), (6, 10, 0.005))
    np.testing.assert_array_equal(np.flatnonzero(hysteresis_mask(probs, 0.1)), np.arange(0, 6))


def test_short_pause_does_not_end_speech():
    result = run(probs_with(100, (20, 40, 0.9), (42, 60, 0.9)), merge_gap_s=0.0)
    assert spans(result) == [(1.9, 6.1)]


def test_long_pause_ends_speech():
    result = run(probs_with(100, (20, 40, 0.9), (45, 60, 0.9)), merge_gap_s=0.0)
    assert spans(result) == [(1.9, 4.1), (4.4, 6.1)]


def test_short_burst_is_dropped_and_counted():
    result = run(probs_with(100, (20, 40, 0.9), (70, 72, 0.9)))
    assert spans(result) == [(1.9, 4.1)]
    assert result.dropped_s == pytest.approx(0.2)


def test_padding_is_clamped_at_audio_edges():
    result = run(probs_with(100, (0, 20, 0.9), (85, 100, 0.9)))
    assert spans(result) == [(0.0, 2.1), (8.4, 10.0)]


def test_padding_shares_a_narrow_gap_at_its_middle():
    result = run(probs_with(100, (20, 40, 0.9), (44, 60, 0.9)), pad_s=0.3, merge_gap_s=0.0)
    assert spans(result) == [(1.7, 4.2), (4.2, 6.3)]


def test_close_neighbours_merge_and_far_ones_do_not():
    assert spans(run(probs_with(100, (20, 40, 0.9), (46, 60, 0.9)))) == [(1.9, 6.1)]
    assert spans(run(probs_with(100, (20, 40, 0.9), (50, 60, 0.9)))) == [(1.9, 4.1), (4.9, 6.1)]


def test_merge_stops_at_max_segment_length():
    result = run(probs_with(100, (20, 40, 0.9), (46, 60, 0.9)), max_segment_s=4.0)
    assert spans(result) == [(1.9, 4.1), (4.5, 6.1)]


def test_short_segment_is_dropped_and_counted():
    result = run(probs_with(100, (20, 40, 0.9), (60, 65, 0.9)))
    assert spans(result) == [(1.9, 4.1)]
    assert result.dropped_s == pytest.approx(0.5)


def test_no_speech_and_empty_input():
    assert spans(run(np.zeros(50))) == []
    empty = run(np.zeros(0))
    assert empty.starts_s.size == 0 and empty.speech_ratio == 0.0 and empty.dropped_s == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_random_inputs_give_valid_deterministic_spans(seed):
    rng = np.random.default_rng(seed)
    cfg = VadConfig(max_segment_s=8.0, min_segment_s=1.0)
    probs = np.repeat(rng.random(120), rng.integers(1, 30, 120))
    audio = rng.standard_normal(int(np.ceil(probs.size * 0.032 * 16000))).astype(np.float32)
    first = speech_spans(probs, audio, cfg)
    second = speech_spans(probs.copy(), audio.copy(), cfg)
    np.testing.assert_array_equal(first.starts_s, second.starts_s)
    np.testing.assert_array_equal(first.ends_s, second.ends_s)
    lengths = first.ends_s - first.starts_s
    assert first.starts_s.size > 0
    assert np.all(first.starts_s[1:] >= first.ends_s[:-1])
    assert first.starts_s[0] >= 0 and first.ends_s[-1] <= audio.size / 16000
    assert np.all(lengths <= cfg.max_segment_s + 1e-9) and np.all(lengths >= cfg.min_segment_s - 1e-9)
    assert np.all((first.segment_speech_ratios >= 0) & (first.segment_speech_ratios <= 1))


def speech_like_audio(duration_s: float, dips: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """Modulated noise near -20 dBFS with 0.3 s gaps of noise at the given (centre_s, dBFS)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * 16000)) / 16000
    envelope = 0.1 * (0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 2.0 * t)))
    audio = envelope * rng.standard_normal(t.size)
    for centre_s, level_db in dips:
        gap = (t >= centre_s - 0.15) & (t < centre_s + 0.15)
        audio[gap] = 10 ** (level_db / 20) * rng.standard_normal(np.count_nonzero(gap))
    return audio.astype(np.float32)


def test_long_speech_splits_at_the_deepest_dip():
    audio = speech_like_audio(75.0, [(10.0, -50), (22.0, -80), (35.0, -60), (47.0, -80)])
    probs = np.ones(int(np.ceil(audio.size / 512)))
    result = speech_spans(probs, audio, VadConfig())
    np.testing.assert_allclose(result.starts_s, [0.0, 22.0, 47.0], atol=0.2)
    np.testing.assert_allclose(result.ends_s, [22.0, 47.0, 75.0], atol=0.2)
    np.testing.assert_array_equal(result.starts_s[1:], result.ends_s[:-1])


def test_equal_dips_take_the_earliest_and_respect_lengths():
    dips = [14.0, 27.0, 40.0, 52.0]
    audio = speech_like_audio(75.0, [(d, -200) for d in dips])  # digital silence in the gaps
    cfg = VadConfig()
    pieces = split_at_quietest_point(audio, 0.0, 75.0, cfg)
    cuts = [end for _, end in pieces[:-1]]
    np.testing.assert_allclose(cuts, dips, atol=0.2)
    lengths = [end - start for start, end in pieces]
    assert all(cfg.min_segment_s <= n <= cfg.max_segment_s for n in lengths)
    assert pieces[0][0] == 0.0 and pieces[-1][1] == 75.0


def test_split_keeps_short_span_whole_and_works_on_a_sub_span():
    audio = speech_like_audio(75.0, [(30.0, -80), (40.0, -80)])
    cfg = VadConfig(max_segment_s=20.0)
    assert split_at_quietest_point(audio, 5.0, 20.0, cfg) == [(5.0, 20.0)]
    pieces = split_at_quietest_point(audio, 25.0, 60.0, cfg)
    assert pieces[0][0] == 25.0 and pieces[-1][1] == 60.0
    np.testing.assert_allclose([end for _, end in pieces[:-1]], [30.0, 40.0], atol=0.2)
