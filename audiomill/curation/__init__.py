"""Curation: per-segment quality metrics, filter policies and deduplication."""
