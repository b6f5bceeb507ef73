import math

import numpy as np
import pytest

from audiomill.models.tokenizer.compare import (collapse_repeats, edit_distance, state_dtw_distance,
                                                token_edit_distance)
from audiomill.models.tokenizer.metrics import bitrate, code_usage, pnmi_purity


def _naive_edit(a, b):
    table = [[max(i, j) if i == 0 or j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1][-1]


def test_edit_distance_matches_the_textbook_recurrence():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.integers(0, 4, rng.integers(0, 12)), rng.integers(0, 4, rng.integers(0, 12))
        assert edit_distance(a, b) == _naive_edit(list(a), list(b))


def test_token_edit_distance_collapses_repeats_and_normalises():
    assert list(collapse_repeats(np.array([5, 5, 7, 7, 7, 5]))) == [5, 7, 5]
    assert token_edit_distance(np.array([1, 1, 2, 2, 3]), np.array([1, 2, 2, 2, 3, 3])) == 0.0
    assert token_edit_distance(np.array([1, 2, 3, 4]), np.array([5, 6, 7, 8])) == 1.0
    assert token_edit_distance(np.array([1, 2, 3, 4]), np.array([1, 2, 9, 4])) == pytest.approx(0.25)
    assert token_edit_distance(np.array([], int), np.array([], int)) == 0.0


def test_state_dtw_distance_ignores_tempo_but_not_content():
    rng = np.random.default_rng(1)
    states = rng.standard_normal((30, 8))
    slow = np.repeat(states, 2, axis=0)
    other = rng.standard_normal((40, 8))
    assert state_dtw_distance(states, slow) == pytest.approx(0.0, abs=1e-9)
    assert state_dtw_distance(states, other) > 0.5


def test_bitrate_is_fps_times_log2_codebook():
    rate = bitrate(25.0, 1024)
    assert rate["bitrate_bps"] == 250.0
    assert rate["compression_vs_mp3_128k"] == 512.0
    assert rate["compression_vs_pcm16"] == 1024.0
    assert bitrate(25.0, 6561)["bitrate_bps"] == pytest.approx(25 * math.log2(6561))


def test_code_usage_counts_codes_and_entropy():
    usage = code_usage(np.array([0, 1, 2, 3] * 2500), 8, 25.0)
    assert usage["code_use"] == 0.5
    assert usage["perplexity"] == pytest.approx(4.0)
    assert usage["entropy_bps"] == pytest.approx(50.0)
    assert usage["lzma_bps"] < usage["entropy_bps"] / 10  # a periodic stream codes far below entropy


def test_pnmi_is_one_for_a_function_of_the_labels_and_near_zero_for_noise():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 5000)
    units = (labels * 7 + 3) % 10  # a relabelling: units determine labels
    assert pnmi_purity(units, labels) == pytest.approx((1.0, 1.0))
    pnmi, purity = pnmi_purity(rng.integers(0, 10, 5000), labels)
    assert pnmi < 0.02 and purity < 0.2
    split = labels * 2 + rng.integers(0, 2, 5000)  # more units than labels, still pure
    assert pnmi_purity(split, labels)[1] == pytest.approx(1.0)
