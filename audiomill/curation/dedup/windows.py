"""Windowed audio signatures: one MinHash per few seconds of landmarks, so containment shows.

Landmark tokens are grouped into blocks of ``block_s`` seconds by anchor time; a window is
``window_blocks`` consecutive blocks, one starting every ``hop_blocks`` blocks (the last window
ends at the last block). A segment shorter than a window has one window over all of it. A window
whose blocks hold no tokens is left out. Windows come at two scales (3 and 2 blocks) in one list:
a clip of ~1.5 s inside a longer recording shares at most ~1.5/3 of a 3 s window's tokens
(Jaccard <= 0.5, often under the LSH band's reach after a lossy/narrowband copy), but ~1.5/2 of a
2 s one; near-duplicates still cover each other scale by scale. Identical windows appear once. Comparing every window of segment A with every window of
segment B tells how much of A is found in B and how much of B in A (``match.coverage``): near
duplicates cover each other, a clip inside a longer recording covers only one way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiomill.schema import SAMPLE_RATE
from audiomill.curation.dedup.fingerprint import DEFAULT_OPTIONS, FingerprintOptions, landmark_tokens
from audiomill.curation.dedup.minhash import EMPTY, MinHasher


@dataclass(frozen=True)
class WindowOptions:
    block_s: float = 1.0
    window_blocks: int = 3
    hop_blocks: int = 1
    short_blocks: int | None = 2  # a second, shorter window scale (None: one scale only)


def window_signatures(tokens: np.ndarray, times_s: np.ndarray, duration_s: float, hasher: MinHasher,
                      opts: WindowOptions = WindowOptions()) -> np.ndarray:
    """(windows, num_perm) uint32; zero rows when there are no tokens."""
    n_blocks = max(1, int(np.ceil(duration_s / opts.block_s - 1e-9)))
    blocks = np.minimum((np.asarray(times_s) / opts.block_s).astype(np.int64), n_blocks - 1)
    block_sigs = hasher.group_signatures(tokens, blocks, n_blocks)
    widths = [opts.window_blocks] + ([opts.short_blocks] if opts.short_blocks else [])
    sigs = np.concatenate([_windows_of_width(block_sigs, min(w, n_blocks), opts.hop_blocks) for w in widths])
    sigs = sigs[(sigs != EMPTY).any(axis=1)]
    _, first = np.unique(sigs, axis=0, return_index=True)
    return sigs[np.sort(first)]


def _windows_of_width(block_sigs: np.ndarray, width: int, hop: int) -> np.ndarray:
    """Element-wise min over ``width`` consecutive blocks, one window every ``hop`` blocks."""
    n_blocks = len(block_sigs)
    starts = list(range(0, n_blocks - width + 1, hop))
    if starts[-1] + width < n_blocks:
        starts.append(n_blocks - width)
    return np.stack([block_sigs[s: s + width] for s in starts]).min(axis=1)  # (windows, perm)


def audio_window_signatures(audio: np.ndarray, hasher: MinHasher, window: WindowOptions = WindowOptions(),
                            fingerprint: FingerprintOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Fingerprint 16 kHz mono ``audio`` and return its window signatures."""
    tokens, times = landmark_tokens(audio, fingerprint)
    return window_signatures(tokens, times, len(audio) / SAMPLE_RATE, hasher, window)
