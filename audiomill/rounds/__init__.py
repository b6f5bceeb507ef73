"""Self-labeling rounds: seed set, selection, verification, round bookkeeping (no Ray here)."""
