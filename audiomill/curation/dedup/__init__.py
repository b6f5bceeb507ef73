"""Deduplication: exact PCM hashes, audio fingerprint MinHash + LSH, transcript MinHash.

Per-segment features are computed inside each part (``pipelines/dedup_features.py``); the global
step (``jobs/dedup.py``) groups them across parts and runs without touching audio.
"""
