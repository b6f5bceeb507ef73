"""Exports of a finished dataset to the formats trainers use: Lhotse (``lhotse.py``) and Hugging Face
``datasets`` (``hf.py``); ``common.py`` holds what they share."""
