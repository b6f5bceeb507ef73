"""Deduplication: exact PCM hashes, audio fingerprint MinHash + LSH, transcript MinHash.

Per-segment features are computed inside each part (``pipelines/dedup_features.py``); the global
step (``orchestration/dedup_job.py``) groups them across parts and runs without touching audio.
"""
