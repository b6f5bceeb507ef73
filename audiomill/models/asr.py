"""Whisper ASR and language ID with faster-whisper (CTranslate2) on clips VAD already cut.

Batching across clips: ``BatchedInferencePipeline.transcribe`` batches the chunks of *one*
audio array. Clips are therefore laid end to end in one array and passed with
``clip_timestamps`` (one clip = one chunk = one batch item) and ``vad_filter=False``, so Whisper
never runs its own VAD. Chunks come back tagged with ``seek`` (their offset in frames), which maps
each result to its clip. Clips longer than Whisper's 30 s window are cut into equal windows whose
texts are joined. Every item is padded to 30 s by Whisper itself, so the encoder cost per item is
fixed; clips are sorted by duration before batching so the decoder does not wait on one long
item per batch.

Packing (``WhisperOptions.pack_s``): short clips are laid end to end, ``PACK_GAP_S`` of silence
apart, into windows of at most ``pack_s`` (greedy in input order, so a source's neighbouring
segments share a window), decoded with timestamp tokens and word timestamps; each word goes to the
clip whose span holds its midpoint. Clips longer than ``pack_s``, and windows of one clip, run
exactly as unpacked. Per packed clip, ``avg_logprob`` is the mean natural log of its words'
probabilities (Whisper's token scores are per window; word probabilities read higher),
``no_speech_prob`` the window's (Whisper computes it once per window), ``compression_ratio`` from
the clip's own text.

Language ID is a separate batched encoder pass over one 30 s clip per group (the caller groups,
e.g. the first 30 s of a source's speech), read from CTranslate2's ``detect_language``. English-
only models (``*.en``) cannot identify languages: they report ``en`` with an unknown probability.

Weights are never downloaded: the model is a local CTranslate2 directory.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from audiomill.models.threads import one_blas_thread

SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper's input window
MIN_CLIP_SAMPLES = SAMPLE_RATE // 10  # shorter clips are zero-padded (keeps chunk offsets distinct)
PACK_GAP_S = 0.5  # silence between packed clips; measured in benchmarks/README.md (asr.py)
PACK_ROUNDS = 2  # packed passes before clips still unfinished run alone
UNFINISHED_S = 1.0  # a window whose last word ends this long before its clip does stopped early
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
CONVERT_HINT = ("convert a Whisper checkpoint on a machine with network access with `pip install "
                "transformers ctranslate2` and `ct2-transformers-converter --model openai/whisper-small "
                "--output_dir DIR --quantization int8 --copy_files tokenizer.json "
                "preprocessor_config.json`, then copy DIR here (or `audiomill models register`)")


class ModelNotFoundError(FileNotFoundError):
    """The CTranslate2 Whisper directory is missing or incomplete; the message names it."""


@dataclass(frozen=True)
class WhisperOptions:
    """Decoding options. ``batch_size`` windows per model call; ``max_new_tokens`` per 30 s window;
    ``pack_s`` the length (seconds) to pack short clips into, None: one clip per window."""

    beam_size: int = 5
    batch_size: int = 8
    word_timestamps: bool = False
    max_new_tokens: int | None = None
    pack_s: float | None = None

    def __post_init__(self) -> None:
        if self.pack_s is not None and not 0 < self.pack_s <= WINDOW_SAMPLES / SAMPLE_RATE:
            raise ValueError(f"pack_s must be in (0, 30] seconds (Whisper's window), got {self.pack_s}")


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
        """Transcribe 16 kHz mono float32 clips in ``language``; one Transcript per clip, in order.

        With ``options.pack_s``, clips a packed window left unfinished (see ``_unfinished``) are
        packed again, and those still unfinished after ``PACK_ROUNDS`` run alone: Whisper often
        ends a packed window early (tiny.en on real prompts: in most windows, dropping the last
        1-3 clips), and batched decoding never seeks on past that as long-form decoding does.
        """
        if options.pack_s is None:
            found, _ = self._transcribe_windows(_unpacked(clips), language, options)
            return [found[i] for i in range(len(clips))]
        found, pending = {}, list(range(len(clips)))
        for _ in range(PACK_ROUNDS):
            transcripts, pending = self._transcribe_windows(_pack(clips, options.pack_s, pending), language,
                                                            options)
            found.update(transcripts)
        found.update(self._transcribe_windows(_unpacked(clips, pending), language, options)[0])
        return [found[i] for i in range(len(clips))]

    def _transcribe_windows(self, windows: list[_Window], language: str,
                            options: WhisperOptions) -> tuple[dict[int, Transcript], list[int]]:
        """Transcripts by clip index of every clip in ``windows``, and the (sorted) clips that
        packed windows left unfinished."""
        results: list[Transcript] = [_EMPTY] * len(windows)
        for packed in (False, True):
            chosen = [w for w, window in enumerate(windows) if (len(window.spans) > 1) == packed]
            for w, result in zip(chosen, self._transcribe_pieces([windows[w].audio for w in chosen], language,
                                                                 options, packed)):
                results[w] = result
        per_clip: dict[int, list[Transcript]] = {}
        unfinished: list[int] = []
        for window, result in zip(windows, results):
            parts = _per_span(result, window.spans, options.word_timestamps)
            for span, part in zip(window.spans, parts):
                per_clip.setdefault(span.clip, []).append(part)
            if len(window.spans) > 1:
                unfinished += _unfinished(window.spans, result, parts)
        return {clip: _join(parts) for clip, parts in per_clip.items()}, sorted(unfinished)

    def _transcribe_pieces(self, pieces: list[np.ndarray], language: str, options: WhisperOptions,
                           packed: bool) -> list[Transcript]:
        """Results of ``pieces`` in order, run longest first in batches of ``options.batch_size``.

        Packed windows decode with timestamp tokens and word timestamps (the words split a window
        back into clips): without timestamp tokens tiny.en dropped 6 of 8 sentences of a packed
        espeak window and the alignment put the survivors' words in the wrong clips.
        """
        if packed:
            options = replace(options, word_timestamps=True)
        order = sorted(range(len(pieces)), key=lambda w: -pieces[w].size)
        results: list[Transcript] = [_EMPTY] * len(pieces)
        for first in range(0, len(order), options.batch_size):
            batch = order[first:first + options.batch_size]
            results_batch = self._transcribe_batch([pieces[w] for w in batch], language, options, packed)
            for w, result in zip(batch, results_batch):
                results[w] = result
        return results

    def _transcribe_batch(self, pieces: list[np.ndarray], language: str, options: WhisperOptions,
                          timestamps: bool = False) -> list[Transcript]:
        """One BatchedInferencePipeline call over ``pieces`` (each <= 30 s) laid end to end;
        ``timestamps`` decodes with timestamp tokens (packed windows).

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
            joined, language=language, vad_filter=False, clip_timestamps=clips,
            without_timestamps=not timestamps, batch_size=len(pieces), beam_size=options.beam_size,
            word_timestamps=options.word_timestamps, max_new_tokens=options.max_new_tokens, log_progress=False)
        fps = self.model.frames_per_second
        seek_to_piece = {int(a) * fps: i for i, a in enumerate(starts_s[:-1])}
        found: list[list] = [[] for _ in pieces]
        for segment in segments:
            found[seek_to_piece[segment.seek]].append(segment)
        return [_from_segments(parts, float(starts_s[i])) for i, parts in enumerate(found)]


_EMPTY = Transcript("", math.nan, math.nan, math.nan)  # a chunk faster-whisper returned nothing for


@dataclass(frozen=True)
class _Span:
    """Where (part of) one clip lies in a window, all in seconds."""

    clip: int  # index into the clips passed to ``transcribe``
    start_s: float  # where the part begins in the window
    offset_s: float  # where the part begins in its clip (non-zero for the later pieces of a long clip)
    clip_s: float  # the whole clip's duration: word times are clamped to it


@dataclass(frozen=True)
class _Window:
    """One batch item (at most 30 s) and the clip parts it holds, in time order."""

    audio: np.ndarray
    spans: tuple[_Span, ...]


def _unpacked(clips: Sequence[np.ndarray], indices: Sequence[int] | None = None) -> list[_Window]:
    """One window per clip (``indices``, default all), or equal pieces of clips over 30 s."""
    windows = []
    for i in range(len(clips)) if indices is None else indices:
        clip_s = clips[i].size / SAMPLE_RATE
        windows += [_Window(piece, (_Span(i, 0.0, offset / SAMPLE_RATE, clip_s),))
                    for offset, piece in _windows(clips[i])]
    return windows


def _pack(clips: Sequence[np.ndarray], pack_s: float, indices: Sequence[int]) -> list[_Window]:
    """Clips ``indices`` laid end to end, ``PACK_GAP_S`` apart, into windows of at most ``pack_s``.

    Greedy in input order (a clip opens a new window when it no longer fits the open one), so
    neighbouring segments, which the stage passes in source and time order, share context.
    Clips longer than ``pack_s`` and windows left holding one clip run unpacked.
    """
    groups: list[list[int]] = []
    alone: list[int] = []
    length_s = math.inf
    for i in indices:
        clip_s = clips[i].size / SAMPLE_RATE
        if clip_s > pack_s:
            alone.append(i)
        elif length_s + PACK_GAP_S + clip_s <= pack_s:
            groups[-1].append(i)
            length_s += PACK_GAP_S + clip_s
        else:
            groups.append([i])
            length_s = clip_s
    alone += [group[0] for group in groups if len(group) == 1]
    packed = [_packed_window(clips, group) for group in groups if len(group) > 1]
    return packed + _unpacked(clips, sorted(alone))


def _packed_window(clips: Sequence[np.ndarray], group: list[int]) -> _Window:
    """The clips of ``group`` joined with ``PACK_GAP_S`` of zeros between them."""
    gap = np.zeros(round(PACK_GAP_S * SAMPLE_RATE), dtype=np.float32)
    parts, spans, at = [], [], 0
    for i in group:
        clip = np.asarray(clips[i], dtype=np.float32)
        spans.append(_Span(i, at / SAMPLE_RATE, 0.0, clip.size / SAMPLE_RATE))
        parts += [clip, gap]
        at += clip.size + gap.size
    return _Window(np.concatenate(parts[:-1]), tuple(spans))


def _per_span(result: Transcript, spans: tuple[_Span, ...], keep_words: bool) -> list[Transcript]:
    """A window's result as one Transcript per span, word times on each clip's own axis."""
    if len(spans) == 1:
        shifted = _shifted(result, spans[0].offset_s, spans[0].clip_s)
        return [shifted if keep_words or not shifted.words else replace(shifted, words=())]
    bounds = _gap_middles(spans)
    owned: list[list[Word]] = [[] for _ in spans]
    for w in result.words:
        k = bisect.bisect_right(bounds, (w.start_s + w.end_s) / 2)
        start, limit = spans[k].start_s, spans[k].clip_s
        owned[k].append(Word(w.word, min(max(round(w.start_s - start, 3), 0.0), limit),
                             min(max(round(w.end_s - start, 3), 0.0), limit), w.prob))
    return [_from_words(words, result.no_speech_prob, keep_words) for words in owned]


def _unfinished(spans: tuple[_Span, ...], result: Transcript, parts: list[Transcript]) -> list[int]:
    """Clips of a packed window that Whisper stopped before finishing: those that got no words,
    and the one holding the window's last word if that word ends ``UNFINISHED_S`` before it does."""
    clips = [span.clip for span, part in zip(spans, parts) if not part.text]
    if result.words:
        last = result.words[-1]
        k = bisect.bisect_right(_gap_middles(spans), (last.start_s + last.end_s) / 2)
        if spans[k].start_s + spans[k].clip_s - last.end_s > UNFINISHED_S and parts[k].text:
            clips.append(spans[k].clip)
    return clips


def _gap_middles(spans: tuple[_Span, ...]) -> list[float]:
    """Window times (s) between consecutive spans: a word's midpoint past one belongs to the next."""
    return [(a.start_s + a.clip_s + b.start_s) / 2 for a, b in zip(spans[:-1], spans[1:])]


def _from_words(words: list[Word], no_speech_prob: float, keep_words: bool) -> Transcript:
    """A packed clip's Transcript from its words: text joined, avg_logprob = mean log word prob."""
    from faster_whisper.transcribe import get_compression_ratio

    if not words:
        return _EMPTY
    text = "".join(w.word for w in words).strip()
    logprob = float(np.mean(np.log(np.maximum([w.prob for w in words], 1e-10))))
    return Transcript(text=text, avg_logprob=logprob, no_speech_prob=no_speech_prob,
                      compression_ratio=get_compression_ratio(text) if text else 0.0,
                      words=tuple(words) if keep_words else ())


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
