"""Transcript near-duplicates: MinHash over word 5-gram shingles of normalized text.

Short transcripts ("thank you", "yes") repeat legitimately, so a text with fewer than
``min_words`` words gets no signature and never matches.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

from audiomill.curation.dedup.minhash import MinHasher

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lowercased word tokens, accents kept, punctuation dropped."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def shingle_tokens(text: str, n: int = 5) -> np.ndarray:
    """uint32 hashes of the word n-grams of ``text`` (one n-gram if it has n words or fewer)."""
    tokens = words(text)
    grams = [" ".join(tokens[i: i + n]) for i in range(max(1, len(tokens) - n + 1))] if tokens else []
    return np.array([int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little")
                     for g in grams], dtype=np.uint32)


def text_signature(text: str | None, hasher: MinHasher, n: int = 5, min_words: int = 8) -> np.ndarray | None:
    """MinHash of the transcript's word n-grams, or None for a missing or short transcript."""
    if not text or len(words(text)) < min_words:
        return None
    return hasher.signature(shingle_tokens(text, n))
