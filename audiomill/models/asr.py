"""Whisper ASR and language ID with faster-whisper (CTranslate2) on clips VAD already cut.

Batching across clips: ``BatchedInferencePipeline.transcribe`` batches the chunks of *one*
audio array. Clips are therefore laid end to end in one array and passed with
``clip_timestamps`` (one clip = one chunk = one batch item) and ``vad_filter=False``, so Whisper
never runs its own VAD. Chunks come back tagged with ``seek`` (their offset in frames), which maps
each result to its clip. Clips longer than Whisper's 30 s window are cut into equal windows whose
texts are joined. Every item is padded to 30 s by Whisper itself, so the encoder cost per item is
fixed; clips are sorted by duration before batching so the decoder does not wait on one long
item per batch.

Language ID is a separate batched encoder pass over one 30 s clip per group (the caller groups,
e.g. the first 30 s of a source's speech), read from CTranslate2's ``detect_language``. English-
only models (``*.en``) cannot identify languages: they report ``en`` with an unknown probability.

Weights are never downloaded: the model is a local CTranslate2 directory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiomill.models.threads import one_blas_thread

SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper's input window
MIN_CLIP_SAMPLES = SAMPLE_RATE // 10  # shorter clips are zero-padded (keeps chunk offsets distinct)
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
CONVERT_HINT = ("convert a Whisper checkpoint on a machine with network access with `pip install "
                "transformers ctranslate2` and `ct2-transformers-converter --model openai/whisper-small "
                "--output_dir DIR --quantization int8 --copy_files tokenizer.json "
                "preprocessor_config.json`, then copy DIR here (or `audiomill models register`)")


class ModelNotFoundError(FileNotFoundError):
    """The CTranslate2 Whisper directory is missing or incomplete; the message names it."""


@dataclass(frozen=True)
class WhisperOptions:
    """Decoding options. ``batch_size`` clips per model call; ``max_new_tokens`` per 30 s window."""

    beam_size: int = 5
    batch_size: int = 8
    word_timestamps: bool = False
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class LanguageGuess:
    language: str  # ISO 639-1 code as Whisper spells it ("en", "de", "yue", ...)
    probability: float | None  # None: the model cannot identify languages (English-only)


@dataclass(frozen=True)
class Word:
    word: str
    start_s: float  # from the start of the clip
    end_s: float
    prob: float


@dataclass(frozen=True)
class Transcript:
    """One clip's result. Log-probs are natural logs; probabilities are in [0, 1]."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[Word, ...] = ()


def check_model_dir(path: str | Path) -> None:
    """Raise ModelNotFoundError naming ``path`` and the missing files, with how to make them."""
    directory = Path(path)
    if not directory.is_dir():
        raise ModelNotFoundError(f"Whisper model directory {directory} does not exist; {CONVERT_HINT}")
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelNotFoundError(f"Whisper model directory {directory} lacks {', '.join(missing)}; "
                                 f"{CONVERT_HINT}")


class WhisperAsr:
    """A faster-whisper model loaded once (per worker) from a local CTranslate2 directory.

    ``compute_type`` None means int8 on CPU and float16 on CUDA. ``cpu_threads`` is
    CTranslate2's intra-op thread count, so one worker uses the CPUs it declared.
    """

    def __init__(self, model_dir: str | Path, device: str = "cpu", compute_type: str | None = None,
                 cpu_threads: int = 1, device_index: int = 0) -> None:
        check_model_dir(model_dir)
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.compute_type = compute_type or ("int8" if device == "cpu" else "float16")
        self.model = WhisperModel(str(model_dir), device=device, device_index=device_index,
                                  compute_type=self.compute_type, cpu_threads=cpu_threads)
        self.pipeline = BatchedInferencePipeline(self.model)
        self.model_dir = str(model_dir)

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    @property
    def supported_languages(self) -> list[str]:
        return list(self.model.supported_languages)

    @one_blas_thread
    def detect_languages(self, clips: Sequence[np.ndarray], batch_size: int = 8) -> list[LanguageGuess]:
        """Most likely language of each clip, from its first 30 s, in batches of ``batch_size``."""
        if not self.multilingual:
            return [LanguageGuess("en", None) for _ in clips]
        from faster_whisper.audio import pad_or_trim

        extractor = self.model.feature_extractor
        guesses: list[LanguageGuess] = []
        for first in range(0, len(clips), batch_size):
            features = np.stack([
                pad_or_trim(extractor(_at_least(clip[:WINDOW_SAMPLES]))[..., :extractor.nb_max_frames])
                for clip in clips[first:first + batch_size]])
            encoded = self.model.encode(features)
            for ranked in self.model.model.detect_language(encoded):
                token, probability = ranked[0]
                guesses.append(LanguageGuess(token[2:-2], float(probability)))
        return guesses

    @one_blas_thread
    def transcribe(self, clips: Sequence[np.ndarray], language: str,
                   options: WhisperOptions = WhisperOptions()) -> list[Transcript]:
        """Transcribe 16 kHz mono float32 clips in ``language``; one Transcript per clip, in order."""
        windows = [(i, offset, piece) for i, clip in enumerate(clips) for offset, piece in _windows(clip)]
        order = sorted(range(len(windows)), key=lambda w: -windows[w][2].size)
        results: list[Transcript] = [_EMPTY] * len(windows)
        for first in range(0, len(order), options.batch_size):
            batch = order[first:first + options.batch_size]
            pieces = [windows[w][2] for w in batch]
            for w, result in zip(batch, self._transcribe_batch(pieces, language, options)):
                results[w] = result
        per_clip: list[list[Transcript]] = [[] for _ in clips]
        for (clip_index, offset, _), result in zip(windows, results):
            duration_s = clips[clip_index].size / SAMPLE_RATE
            per_clip[clip_index].append(_shifted(result, offset / SAMPLE_RATE, duration_s))
        return [_join(parts) for parts in per_clip]

    def _transcribe_batch(self, pieces: list[np.ndarray], language: str,
                          options: WhisperOptions) -> list[Transcript]:
        """One BatchedInferencePipeline call over ``pieces`` (each <= 30 s) laid end to end.

        Each piece starts on a whole second of the joined array (zeros in between belong to no
        clip), so faster-whisper's float seconds -> samples round trip is exact and the chunk
        tag ``seek = offset_s * frames_per_second`` identifies the piece.
        """
        pieces = [_at_least(p) for p in pieces]
        starts_s = np.concatenate([[0], np.cumsum([math.ceil(p.size / SAMPLE_RATE) for p in pieces])])
        joined = np.zeros(int(starts_s[-1]) * SAMPLE_RATE, dtype=np.float32)
        for start_s, piece in zip(starts_s, pieces):
            joined[int(start_s) * SAMPLE_RATE:int(start_s) * SAMPLE_RATE + piece.size] = piece
        clips = [{"start": float(a), "end": float(a) + p.size / SAMPLE_RATE} for a, p in zip(starts_s, pieces)]
        segments, _ = self.pipeline.transcribe(
            joined, language=language, vad_filter=False, clip_timestamps=clips, without_timestamps=True,
            batch_size=len(pieces), beam_size=options.beam_size, word_timestamps=options.word_timestamps,
            max_new_tokens=options.max_new_tokens, log_progress=False)
        fps = self.model.frames_per_second
        seek_to_piece = {int(a) * fps: i for i, a in enumerate(starts_s[:-1])}
        found: list[list] = [[] for _ in pieces]
        for segment in segments:
            found[seek_to_piece[segment.seek]].append(segment)
        return [_from_segments(parts, float(starts_s[i])) for i, parts in enumerate(found)]


_EMPTY = Transcript("", math.nan, math.nan, math.nan)  # a chunk faster-whisper returned nothing for


def _at_least(clip: np.ndarray) -> np.ndarray:
    clip = np.asarray(clip, dtype=np.float32)
    return clip if clip.size >= MIN_CLIP_SAMPLES else np.pad(clip, (0, MIN_CLIP_SAMPLES - clip.size))


def _windows(clip: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(offset in samples, piece)``: ``clip`` in equal pieces of at most 30 s."""
    count = max(1, math.ceil(clip.size / WINDOW_SAMPLES))
    bounds = np.linspace(0, clip.size, count + 1).round().astype(int)
    return [(int(a), clip[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _shifted(result: Transcript, offset_s: float, limit_s: float) -> Transcript:
    """Word times moved by ``offset_s`` and clamped to [0, ``limit_s``] (the clip's duration)."""
    if not result.words:
        return result
    words = tuple(Word(w.word, min(round(w.start_s + offset_s, 3), limit_s),
                       min(round(w.end_s + offset_s, 3), limit_s), w.prob) for w in result.words)
    return Transcript(result.text, result.avg_logprob, result.no_speech_prob, result.compression_ratio, words)


def _from_segments(segments: list, offset_s: float) -> Transcript:
    """Merge faster-whisper Segments of one chunk; word times become clip-relative seconds."""
    from faster_whisper.transcribe import get_compression_ratio

    if not segments:
        return _EMPTY
    text = "".join(s.text for s in segments).strip()
    tokens = [max(len(s.tokens), 1) for s in segments]
    words = tuple(Word(w.word, max(0.0, round(float(w.start) - offset_s, 3)),
                       max(0.0, round(float(w.end) - offset_s, 3)), float(w.probability))
                  for s in segments for w in (s.words or []))
    return Transcript(text=text,
                      avg_logprob=float(np.average([s.avg_logprob for s in segments], weights=tokens)),
                      no_speech_prob=float(max(s.no_speech_prob for s in segments)),
                      compression_ratio=get_compression_ratio(text) if text else 0.0, words=words)


def _join(parts: list[Transcript]) -> Transcript:
    """One clip's windows joined (word times already shifted to the clip's start)."""
    if len(parts) == 1:
        return parts[0]
    from faster_whisper.transcribe import get_compression_ratio

    text = " ".join(p.text for p in parts if p.text)
    return Transcript(text=text, avg_logprob=float(np.mean([p.avg_logprob for p in parts])),
                      no_speech_prob=float(max(p.no_speech_prob for p in parts)),
                      compression_ratio=get_compression_ratio(text) if text else 0.0,
                      words=tuple(w for p in parts for w in p.words))
