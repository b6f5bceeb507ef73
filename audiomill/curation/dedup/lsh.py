"""LSH banding over MinHash signatures: band keys, buckets, candidate pairs.

A signature of ``bands * rows`` values is cut into ``bands`` bands; two signatures with Jaccard J
share at least one band key with probability ``1 - (1 - J**rows)**bands``. A band key mixes the
band number with its ``rows`` values into one uint64, so keys from different bands never collide
by construction of the data. Everything here is a pure function of its input, so Ray and the
local runner produce the same candidates.
"""

from __future__ import annotations

import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)
_MUL = np.uint64(0xBF58476D1CE4E5B9)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 keys of (n, num_perm) uint32 signatures; needs bands * rows <= num_perm."""
    signatures = np.asarray(signatures, dtype=np.uint32)
    if bands * rows > signatures.shape[-1]:
        raise ValueError(f"bands * rows = {bands * rows} exceeds the {signatures.shape[-1]} signature values")
    values = signatures[:, : bands * rows].reshape(len(signatures), bands, rows).astype(np.uint64)
    key = np.broadcast_to((np.arange(bands, dtype=np.uint64) + np.uint64(1)) * _MIX, values.shape[:2]).copy()
    with np.errstate(over="ignore"):
        for j in range(rows):
            key = (key ^ values[:, :, j]) * _MUL
            key ^= key >> np.uint64(31)
    return key


def explode(owners: np.ndarray, signatures: np.ndarray, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique (band key, owner) pairs for signature rows owned by ``owners`` (e.g. window -> segment)."""
    if len(signatures) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.asarray(owners).dtype)
    keys = band_keys(signatures, bands, rows)
    flat_keys = keys.reshape(-1)
    flat_owners = np.repeat(np.asarray(owners), bands)
    order = np.lexsort((flat_owners, flat_keys))
    flat_keys, flat_owners = flat_keys[order], flat_owners[order]
    first = np.r_[True, (flat_keys[1:] != flat_keys[:-1]) | (flat_owners[1:] != flat_owners[:-1])]
    return flat_keys[first], flat_owners[first]


def bucket_pairs(members: list, max_bucket: int = 64) -> list[tuple]:
    """Candidate pairs (a, b), a < b, among the sorted distinct members of one bucket.

    A bucket larger than ``max_bucket`` (a big cluster of copies, or a very common band) yields
    only the pairs of its first member with each other and of each member with the next: linear,
    and still enough for union-find to join a cluster of real copies.
    """
    members = sorted(set(members))
    if len(members) <= max_bucket:
        return [(a, b) for i, a in enumerate(members) for b in members[i + 1:]]
    star = [(members[0], m) for m in members[1:]]
    chain = [(a, b) for a, b in zip(members[1:], members[2:])]
    return star + chain


def candidate_pairs(band_key: np.ndarray, owner: np.ndarray, max_bucket: int = 64) -> set[tuple]:
    """All candidate pairs from (band key, owner) rows, in process (the local runner's groupby)."""
    if len(band_key) == 0:
        return set()
    order = np.argsort(band_key, kind="stable")
    band_key, owner = band_key[order], np.asarray(owner)[order]
    starts = np.flatnonzero(np.r_[True, band_key[1:] != band_key[:-1]])
    ends = np.r_[starts[1:], len(band_key)]
    pairs: set[tuple] = set()
    for s, e in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
        pairs.update(bucket_pairs(owner[s:e].tolist(), max_bucket))
    return pairs
