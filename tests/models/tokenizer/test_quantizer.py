import numpy as np
import pytest

from audiomill.models.tokenizer.metrics import pnmi_purity
from audiomill.models.tokenizer.quantizer import Codebook, fit_codebook


def _clusters(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, 16)) * 10
    labels = rng.integers(0, 8, 4000)
    return (centres[labels] + rng.standard_normal((4000, 16))).astype(np.float32), labels


def test_same_frames_and_seed_give_the_same_codebook():
    frames, _ = _clusters()
    a, b = fit_codebook(frames, 8, seed=3), fit_codebook(frames, 8, seed=3)
    assert np.array_equal(a.centroids, b.centroids)
    assert np.array_equal(a.assign(frames), b.assign(frames))


def test_assignment_recovers_well_separated_clusters(tmp_path):
    frames, labels = _clusters()
    book = fit_codebook(frames, 8, seed=0)
    codes = book.assign(frames)
    pnmi, purity = pnmi_purity(codes, labels)  # plain k-means may merge two clusters (local optimum)
    assert pnmi > 0.85 and purity > 0.8
    assert len(set(codes)) == 8
    book.save(str(tmp_path / "c.npz"))
    again = Codebook.load(str(tmp_path / "c.npz"))
    assert np.array_equal(again.assign(frames), codes)
    assert again.bits_per_token == 3.0


def test_too_few_frames_for_the_codebook_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot fit 64 codes"):
        fit_codebook(np.zeros((10, 4), np.float32), 64)
