"""Getting audio and tokens out of datasets and files for the tokenizer commands.

Also the documented way to pair audio with tokens: ``segment_tokens`` reads a sidecar table;
``token_pairs`` yields (key, 16 kHz audio, tokens) for a dataset, ready for a torch DataLoader
(wrap it in an ``IterableDataset``) or ``ray.data.from_items``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audiomill import layout, schema, storage
from audiomill.audio import decode_audio
from audiomill.config import DecodeConfig
from audiomill.execution.features import list_segments, read_audio_batch
from audiomill.jobs.tokenizer_eval import Clip

ALSA_DIR = Path("/usr/share/sounds/alsa")


def dataset_clips(dataset: str, max_segments: int | None = None) -> tuple[Clip, ...]:
    """The first ``max_segments`` kept segments (in key order) as clips, text unknown."""
    segments = read_audio_batch(list_segments([dataset], max_segments))
    return tuple(Clip(key, np.frombuffer(raw, "<f4").copy()) for key, raw in
                 zip(segments[schema.KEY].to_pylist(), segments[schema.AUDIO].to_pylist(), strict=True))


def segment_audio(dataset: str, key: str) -> np.ndarray:
    segments = list_segments([dataset])
    match = segments.filter(pa.compute.equal(segments[schema.KEY], key))
    if match.num_rows == 0:
        raise KeyError(f"segment {key!r} is not in {dataset}/{layout.INDEX_FILE}")
    return np.frombuffer(read_audio_batch(match)[schema.AUDIO][0].as_py(), "<f4").copy()


def read_clip(path: str, text: str | None = None) -> Clip:
    """Any file PyAV decodes, as 16 kHz mono."""
    return Clip(Path(path).name, decode_audio(path, DecodeConfig()).samples, text)


def alsa_clips() -> tuple[Clip, ...]:
    """alsa-utils' real human speech clips (``Front_Center.wav`` says "front center"); no Noise.wav."""
    if not ALSA_DIR.is_dir():
        return ()
    paths = sorted(p for p in ALSA_DIR.glob("*.wav") if p.stem.lower() != "noise")
    return tuple(read_clip(str(p), re.sub(r"[_-]+", " ", p.stem).lower()) for p in paths)


def _token_tables(dataset: str, model_id: str) -> list[str]:
    directory = layout.tokens_dir(dataset, model_id)
    if not storage.exists(directory):
        raise FileNotFoundError(f"no token tables at {directory}: run `audiomill tokenize {dataset} "
                                f"--tokenizer {model_id}` first")
    return sorted(i.uri for i in storage.list_files(directory) if i.uri.endswith(".parquet"))


def segment_tokens(dataset: str, model_id: str, key: str) -> np.ndarray:
    """The tokens of segment ``key`` from the dataset's ``tokens/<model_id>/`` tables."""
    for uri in _token_tables(dataset, model_id):
        table = pq.read_table(pa.BufferReader(storage.read_bytes(uri)), filters=[(schema.KEY, "=", key)])
        if table.num_rows:
            tokens = table[schema.TOK_TOKENS][0].as_py()
            if tokens is None:
                raise ValueError(f"segment {key} has no tokens: {table[schema.TOK_SKIP_REASON][0].as_py()}")
            return np.asarray(tokens, np.int32)
    raise KeyError(f"segment {key!r} has no row in the token tables of {model_id}")


def token_pairs(dataset: str, model_id: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(key, audio, tokens) of every tokenized segment, part by part; skipped segments left out."""
    segments = list_segments([dataset])
    for uri in _token_tables(dataset, model_id):
        tokens = pq.read_table(pa.BufferReader(storage.read_bytes(uri)), columns=[schema.KEY, schema.TOK_TOKENS])
        tokens = tokens.filter(pa.compute.is_valid(tokens[schema.TOK_TOKENS]))
        rows = segments.filter(pa.compute.is_in(segments[schema.KEY], value_set=tokens[schema.KEY]))
        audio = dict(zip(rows[schema.KEY].to_pylist(), read_audio_batch(rows)[schema.AUDIO].to_pylist(), strict=True))
        for key, ids in zip(tokens[schema.KEY].to_pylist(), tokens[schema.TOK_TOKENS].to_pylist(), strict=True):
            yield key, np.frombuffer(audio[key], "<f4"), np.asarray(ids, np.int32)
