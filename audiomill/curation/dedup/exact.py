"""Exact duplicates: a hash of the decoded PCM, not of file bytes.

Audio is quantized to 16-bit exactly as the FLAC writer stores it, so the same samples in a WAV, a
FLAC or a stereo-averaged copy hash alike, and the hash names what a reader of the shard gets.
"""

from __future__ import annotations

import hashlib

import numpy as np


def pcm_hash(audio: np.ndarray) -> str:
    """blake2b-128 (hex) of the int16-quantized 16 kHz mono samples."""
    pcm = np.clip(np.round(np.asarray(audio, dtype=np.float32) * 32767.0), -32768, 32767).astype("<i2")
    return hashlib.blake2b(pcm.tobytes(), digest_size=16).hexdigest()
