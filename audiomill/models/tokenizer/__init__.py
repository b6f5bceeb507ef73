"""Semantic-first audio tokenizer: frozen Whisper encoder -> k-means tokens at 25 Hz -> decoder."""

from audiomill.models.tokenizer.tokenizer import SemanticTokenizer

__all__ = ["SemanticTokenizer"]
