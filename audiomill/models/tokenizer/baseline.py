"""MFCC k-means units: the floor any semantic tokenizer must beat on unit quality (PNMI).

13 MFCCs (DCT-II of the 80-band log-mel) averaged over each 40 ms token frame, so the baseline
sees the same frames as the tokens; clustered with the same k-means code as the real codebook.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct

from audiomill.models.tokenizer.mel import log_mel
from audiomill.models.tokenizer.quantizer import Codebook, fit_codebook
from audiomill.models.tokenizer.semantic import MEL_PER_FRAME

N_MFCC = 13


def mfcc_frames(audio: np.ndarray) -> np.ndarray:
    """(25 Hz frames, 13) MFCCs of a 16 kHz clip."""
    mel = log_mel(audio)
    cepstra = dct(mel, type=2, axis=1, norm="ortho")[:, :N_MFCC]
    return cepstra.reshape(-1, MEL_PER_FRAME, N_MFCC).mean(axis=1).astype(np.float32)


def fit_mfcc_units(clips: list[np.ndarray], size: int, seed: int = 0) -> Codebook:
    frames = np.concatenate([mfcc_frames(c) for c in clips])
    return fit_codebook(frames, min(size, len(frames)), seed)
