"""A finished dataset (shards + index.parquet) of espeak-ng utterances with known text and voice.

Tokenizer tests and benchmarks need a dataset as ``audiomill clean`` leaves it, but not the
cost of running VAD over generated files: this packs utterances with the writer's own shard
packer (``pipelines/shards.py``) and writes the index columns readers use. Same input, same bytes.
Sentences: the demo corpus's English ones plus Harvard sentences (IEEE 1969, public domain).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audiomill import layout, schema
from audiomill.config import ShardConfig
from audiomill.pipelines.shards import pack_shards
from audiomill.testing import signals
from audiomill.testing.corpus import EN

HARVARD = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
]
SENTENCES = tuple(EN) + tuple(HARVARD)
VOICES = ("en-us", "en+f3", "en+m3", "en-gb-x-rp", "en+f4", "en-us+m5")


@dataclass(frozen=True)
class Utterance:
    key: str
    text: str
    voice: str
    audio: np.ndarray  # float32, 16 kHz

    @property
    def seconds(self) -> float:
        return self.audio.size / schema.SAMPLE_RATE


@functools.cache
def _speech(text: str, voice: str) -> np.ndarray:
    audio, sr = signals.espeak(text, voice)
    out = signals.resample(audio, sr, schema.SAMPLE_RATE).astype(np.float32)
    out.flags.writeable = False
    return out


def utterance(text: str, voice: str) -> Utterance:
    """espeak-ng speech of ``text`` in ``voice`` at 16 kHz, keyed by a hash of both."""
    key = hashlib.sha1(f"{voice}\t{text}".encode()).hexdigest()[:24]
    return Utterance(key=key, text=text, voice=voice, audio=_speech(text, voice))


def utterances(sentences: tuple[str, ...] | list[str], voices: tuple[str, ...] | list[str]) -> list[Utterance]:
    return [utterance(text, voice) for text in sentences for voice in voices]


def write_dataset(root: str | Path, items: list[Utterance], part_size: int = 8) -> Path:
    """Pack ``items`` into ``shards/`` (``part_size`` segments per part) and write ``index.parquet``."""
    root = Path(root)
    (root / layout.SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    ordered = sorted(items, key=lambda u: u.key)
    index_rows = []
    for part_id, start in enumerate(range(0, len(ordered), part_size)):
        rows = [{schema.KEY: u.key, schema.AUDIO: np.asarray(u.audio, "<f4").tobytes(),
                 schema.PART_ID: part_id, schema.AUDIO_DURATION_S: u.seconds}
                for u in ordered[start:start + part_size]]
        for shard in pack_shards(rows, part_id, ShardConfig()):
            (root / layout.SHARDS_DIR / shard.name).write_bytes(shard.data)
            for key, (offset, size) in shard.offsets.items():
                index_rows.append({schema.KEY: key, schema.SHARD: shard.name, schema.TAR_OFFSET: offset,
                                   schema.FLAC_BYTES: size, schema.PART_ID: part_id})
    durations = {u.key: u.seconds for u in items}
    table = pa.Table.from_pylist(index_rows, pa.schema([
        pa.field(schema.KEY, pa.string()), pa.field(schema.SHARD, pa.string()),
        pa.field(schema.TAR_OFFSET, pa.int64()), pa.field(schema.FLAC_BYTES, pa.int64()),
        pa.field(schema.PART_ID, pa.int32())]))
    table = table.append_column(schema.AUDIO_DURATION_S,
                                pa.array([durations[k] for k in table[schema.KEY].to_pylist()], pa.float64()))
    pq.write_table(table, root / layout.INDEX_FILE)
    return root
