"""The understanding model of the self-labeling rounds (Whisper + attribute heads + measures)."""
