"""``audiomill round speak``: the trained token generator says a text in a profile, and the
tokenizer's decoder turns its tokens into audio (what the rounds train, made audible)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiomill.annotation import CLASSES
from audiomill.jobs.rounds.generator import phone_sequence
from audiomill.config import MODEL_CACHE_DIR
from audiomill.models.generation.token_model import PROFILE_FIELDS, TokenGenerator
from audiomill.models.registry import resolve_model


@dataclass(frozen=True)
class Spoken:
    audio: np.ndarray  # 16 kHz float32
    tokens: np.ndarray
    generator: str  # the generator's model id
    tokenizer: str


def check_profile(profile: dict[str, str]) -> dict[str, str]:
    """``{ann_gender: female, ...}``; a field or value the generator does not know is a ValueError."""
    for name, value in profile.items():
        if name not in PROFILE_FIELDS:
            raise ValueError(f"profile field {name!r} is not one of {', '.join(PROFILE_FIELDS)}")
        if value not in CLASSES[name]:
            raise ValueError(f"{name}={value!r}: expected one of {', '.join(CLASSES[name])}")
    return profile


def speak(text: str, profile: dict[str, str], *, generator: str, tokenizer: str = "", language: str = "en",
          registry: str = "") -> Spoken:
    """Generate ``text``'s tokens with ``generator`` (dir or ref) and decode them with
    ``tokenizer`` (default: the one the generator was trained on, when it is a registry ref)."""
    from audiomill.models.tokenizer import SemanticTokenizer

    resolved = resolve_model(generator, registry)
    model = TokenGenerator.load(resolved.local_dir(MODEL_CACHE_DIR))
    tok = SemanticTokenizer.load(tokenizer or model.tokenizer, registry)
    if tok.version != model.tokenizer:
        raise ValueError(f"{resolved.model_id} speaks the tokens of {model.tokenizer}, not of {tok.version}")
    phones = phone_sequence(text, language)
    if phones is None:
        raise ValueError(f"nothing to speak: espeak-ng reads no phones from {text!r} in language {language!r}")
    tokens = model.generate([phones], [check_profile(profile)])[0]
    return Spoken(tok.decode(tokens), tokens, resolved.model_id, tok.version)
