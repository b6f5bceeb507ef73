"""Numbers that describe a token stream: bitrate, code use, perplexity, and unit quality (PNMI).

PNMI (phone-normalised mutual information, as in the HuBERT paper) is I(phone; unit) / H(phone)
over aligned frames: 1 when units determine phones, 0 when they say nothing about them. Purity is
the share of frames whose unit's most frequent phone is their phone.
"""

from __future__ import annotations

import lzma
import math

import numpy as np

MP3_BPS = 128_000.0
PCM16_BPS = 16_000 * 16.0


def bitrate(fps: float, codebook_size: int) -> dict[str, float]:
    """Exact fixed-length rate fps x log2(K) and the compression factors it implies."""
    bps = fps * math.log2(codebook_size)
    return {"bitrate_bps": bps, "compression_vs_mp3_128k": MP3_BPS / bps, "compression_vs_pcm16": PCM16_BPS / bps}


def code_usage(tokens: np.ndarray, codebook_size: int, fps: float) -> dict[str, float]:
    """Code use, unigram perplexity/entropy and an actual entropy-coded (lzma) rate in bit/s."""
    tokens = np.asarray(tokens, np.int64)
    if tokens.size == 0:
        return {"code_use": 0.0, "perplexity": 0.0, "entropy_bits": 0.0, "entropy_bps": 0.0, "lzma_bps": 0.0}
    counts = np.bincount(tokens, minlength=codebook_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * np.log2(p)).sum())
    packed = lzma.compress(tokens.astype(np.int16).tobytes(), preset=9 | lzma.PRESET_EXTREME)
    seconds = tokens.size / fps
    return {"code_use": float((counts > 0).mean()), "perplexity": 2.0 ** entropy, "entropy_bits": entropy,
            "entropy_bps": entropy * fps, "lzma_bps": 8.0 * len(packed) / seconds}


def pnmi_purity(units: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(PNMI, purity) of frame-aligned integer ``units`` against integer ``labels``."""
    units, labels = np.asarray(units, np.int64), np.asarray(labels, np.int64)
    if units.size == 0:
        return 0.0, 0.0
    _, u = np.unique(units, return_inverse=True)
    _, y = np.unique(labels, return_inverse=True)
    joint = np.zeros((u.max() + 1, y.max() + 1))
    np.add.at(joint, (u, y), 1.0)
    joint /= joint.sum()
    pu, py = joint.sum(axis=1), joint.sum(axis=0)
    nz = joint > 0
    mutual = float((joint[nz] * np.log(joint[nz] / (pu[:, None] * py[None, :])[nz])).sum())
    h_labels = float(-(py[py > 0] * np.log(py[py > 0])).sum())
    purity = float(joint.max(axis=1).sum())
    return (mutual / h_labels if h_labels > 0 else 0.0), purity
