"""ASR stage: language ID per source, then batched Whisper transcription of every segment.

Language ID runs once per source on the first 30 s of its speech (its segments in time order),
which costs one encoder pass per source rather than per segment and gives short segments the
context of their neighbours. Segments whose source language is outside ``asr.languages`` become
``language`` rejects (or stay, tagged, with ``on_other_language: tag``); the rest are transcribed
in their source's language. Hallucination checks are policy rules over the numeric ``asr_*``
columns (see ``schema``): compression ratio (repetition), chars per second, and
``asr_nonspeech_text_prob`` (text written over audio Whisper calls non-speech).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict

import numpy as np
import pyarrow as pa

from audiomill import schema
from audiomill.config import MODEL_CACHE_DIR, AsrConfig, CleanConfig
from audiomill.models.asr import (CONVERT_HINT, WINDOW_SAMPLES, ModelNotFoundError, Transcript,
                                  WhisperAsr, WhisperOptions)
from audiomill.models.registry import ResolvedModel, resolve_model
from audiomill.pipelines.base import Resources, Stage, with_rejects
from audiomill.schema import RejectReason

WORD_TYPE = pa.list_(pa.struct([("word", pa.string()), ("start_s", pa.float64()),
                                ("end_s", pa.float64()), ("prob", pa.float64())]))
DEFAULT_BATCH = {"cpu": 4, "cuda": 32}  # on CPU batching changes little (measured within ±10%)


def asr_resources(cfg: AsrConfig) -> Resources:
    """GPU actors (fractional GPUs share a card) on cuda; ``cpu_threads`` CPUs otherwise."""
    if cfg.device == "cuda":
        return Resources(num_cpus=1.0, num_gpus=cfg.num_gpus)
    return Resources(num_cpus=float(cfg.cpu_threads))


def resolve_asr_model(cfg: CleanConfig) -> ResolvedModel:
    """Pin ``asr.model`` (a directory or registry ref) on the driver, before the job starts."""
    try:
        return resolve_model(cfg.asr.model, cfg.models.registry)
    except FileNotFoundError as err:
        raise ModelNotFoundError(f"asr.model: {err}; {CONVERT_HINT}") from err


class AsrStage(Stage):
    """Segment rows in; the same rows with ``asr_*`` columns out (or ``language`` rejects)."""

    name = schema.StageName.ASR.value
    requires = frozenset({schema.AUDIO, schema.KEY, schema.SOURCE_ID})
    adds = frozenset(schema.ASR_COLUMNS)

    def __init__(self, cfg: AsrConfig, model: ResolvedModel, cache_dir: str = MODEL_CACHE_DIR
                 ) -> None:
        super().__init__()
        self.cfg = cfg
        self.model_ref = model
        self.cache_dir = cache_dir
        self.resources = asr_resources(cfg)  # per instance: depends on the device config
        self.options = WhisperOptions(beam_size=cfg.beam_size, word_timestamps=cfg.word_timestamps,
                                      batch_size=cfg.batch_size or DEFAULT_BATCH[cfg.device],
                                      max_new_tokens=cfg.max_new_tokens, pack_s=cfg.pack_s)
        self.allowed = {code.lower() for code in cfg.languages} if cfg.languages is not None else None
        self.asr: WhisperAsr | None = None

    def setup(self) -> None:
        self.asr = WhisperAsr(self.model_ref.local_dir(self.cache_dir), device=self.cfg.device,
                              compute_type=self.cfg.compute_type, cpu_threads=self.cfg.cpu_threads)
        unknown = sorted((self.allowed or set()) - set(self.asr.supported_languages))
        if unknown:
            raise ValueError(f"asr.languages: {unknown} not supported by {self.model_ref.model_id} "
                             f"({'English-only model' if not self.asr.multilingual else 'see Whisper codes'})")

    def process(self, table: pa.Table) -> pa.Table:
        assert self.asr is not None, "setup() not called"
        audio_column = table[schema.AUDIO].combine_chunks()
        audios = [np.frombuffer(audio_column[i].as_buffer(), dtype=np.float32) for i in range(table.num_rows)]
        languages, probs = self._languages(table, audios)
        keep = [self.allowed is None or lang in self.allowed or self.cfg.on_other_language == "tag"
                for lang in languages]
        transcripts: list[Transcript | None] = [None] * table.num_rows
        by_language: dict[str, list[int]] = defaultdict(list)
        for row, (language, kept) in enumerate(zip(languages, keep)):
            if kept:
                by_language[language].append(row)
        for language, rows in sorted(by_language.items()):
            for row, result in zip(rows, self.asr.transcribe([audios[r] for r in rows], language, self.options)):
                transcripts[row] = result
        table = self._append_columns(table, audios, languages, probs, transcripts)
        reasons = [None if kept else RejectReason.LANGUAGE.value for kept in keep]
        details = [None if kept else f"language {lang} (p={p if p is None else round(p, 3)}) not in "
                   f"{sorted(self.allowed or [])}" for lang, p, kept in zip(languages, probs, keep)]
        return with_rejects(table, self.name, reasons, details)

    def _languages(self, table: pa.Table, audios: list[np.ndarray]) -> tuple[list[str], list[float | None]]:
        """Per row: its source's language and probability, from the source's first 30 s of speech."""
        if not self.asr.multilingual:  # English-only models cannot tell languages apart
            return ["en"] * table.num_rows, [None] * table.num_rows
        rows_by_source: dict[str, list[int]] = defaultdict(list)
        for row, source in enumerate(table[schema.SOURCE_ID].to_pylist()):
            rows_by_source[source].append(row)
        starts = table[schema.START_S].to_pylist()
        sources = sorted(rows_by_source)
        clips = [_first_speech([audios[r] for r in sorted(rows_by_source[s], key=starts.__getitem__)])
                 for s in sources]
        guesses = dict(zip(sources, self.asr.detect_languages(clips, self.options.batch_size)))
        per_row = [guesses[s] for s in table[schema.SOURCE_ID].to_pylist()]
        return [g.language for g in per_row], [g.probability for g in per_row]

    def _append_columns(self, table: pa.Table, audios: list[np.ndarray], languages: list[str],
                        probs: list[float | None], transcripts: list[Transcript | None]) -> pa.Table:
        durations = [a.size / schema.SAMPLE_RATE for a in audios]
        texts = [t.text if t else None for t in transcripts]
        columns: dict[str, pa.Array] = {
            schema.ASR_TEXT: pa.array(texts, pa.string()),
            schema.ASR_LANGUAGE: pa.array(languages, pa.string()),
            schema.ASR_LANGUAGE_PROB: pa.array(probs, pa.float64()),
            schema.ASR_AVG_LOGPROB: _floats(t.avg_logprob if t else None for t in transcripts),
            schema.ASR_NO_SPEECH_PROB: _floats(t.no_speech_prob if t else None for t in transcripts),
            schema.ASR_COMPRESSION_RATIO: _floats(t.compression_ratio if t else None for t in transcripts),
            schema.ASR_CHARS_PER_S: _floats(len(x) / d if x is not None and d > 0 else None
                                            for x, d in zip(texts, durations)),
            schema.ASR_NONSPEECH_TEXT_PROB: _floats((t.no_speech_prob if t.text else 0.0) if t else None
                                                    for t in transcripts),
            schema.ASR_MODEL: pa.array([self.model_ref.model_id] * table.num_rows, pa.string()),
        }
        if self.cfg.word_timestamps:
            columns[schema.ASR_WORDS] = pa.array(
                [[asdict(w) for w in t.words] if t else None for t in transcripts], WORD_TYPE)
        for name, values in columns.items():
            table = table.append_column(name, values)
        return table


def _first_speech(segments: list[np.ndarray]) -> np.ndarray:
    """The first 30 s of a source's speech: its segments, in time order, joined and cut."""
    joined, total = [], 0
    for audio in segments:
        joined.append(audio[:WINDOW_SAMPLES - total])
        total += joined[-1].size
        if total >= WINDOW_SAMPLES:
            break
    return np.concatenate(joined) if joined else np.zeros(0, np.float32)


def _floats(values) -> pa.Array:  # noqa: ANN001 - any iterable of float | None
    """float64 column; NaN (no text decoded) becomes null so min/max policy rules skip it."""
    return pa.array([None if v is None or math.isnan(v) else float(v) for v in values], pa.float64())


def pin_asr_model(cfg: CleanConfig) -> tuple[CleanConfig, dict[str, ResolvedModel]]:
    """Resolve ``asr.model`` once for a job and pin a registry alias (``@production``) to its
    exact version in the config, so part fingerprints change when the alias moves."""
    if not cfg.asr.enabled:
        return cfg, {}
    model = resolve_asr_model(cfg)
    if model.registry is not None:
        cfg = cfg.model_copy(update={"asr": cfg.asr.model_copy(update={"model": model.ref})})
    return cfg, {"asr": model}
