"""Export a dataset as a Hugging Face ``datasets`` dataset: parquet shards with an Audio feature.

One parquet file per audiomill shard under ``data/train-NNNNN-of-NNNNN.parquet``; each row has
``audio`` (``{"bytes": stored FLAC, "path": "<key>.flac"}``, feature ``Audio(sampling_rate=16000)``)
and every index column except shard positions, plus joined token and label columns. The features
are stored in the parquet schema metadata the way ``datasets`` writes them, and a ``README.md``
dataset card names the files, so ``datasets.load_dataset(OUT)`` opens it offline.

The FLAC bytes are written as stored (no re-encode). Decoding them inside ``datasets`` needs its
optional ``torchcodec``; ``cast_column("audio", Audio(decode=False))`` gives the bytes without it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audiomill import schema
from audiomill.exports.common import POSITION_COLUMNS, ExportSummary, export_table, iter_members

logger = logging.getLogger(__name__)

DATA_DIR = "data"
SPLIT = "train"
AUDIO_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
CARD = """---
configs:
- config_name: default
  data_files:
  - split: {split}
    path: {data_dir}/{split}-*.parquet
---
# {name}

Exported by audiomill from `{root}`: {segments} segments, {hours:.3f} hours of 16 kHz mono speech
(FLAC in the `audio` column), with every index column (quality `q_*`, VAD, ASR, source URI and
its license/provenance in `metadata_json`){extra}.
"""


def _features_metadata(table: pa.Table) -> dict[bytes, bytes]:
    """The ``huggingface`` schema metadata ``datasets`` reads back as Features (Audio included)."""
    from datasets import Audio, Features

    features = Features.from_arrow_schema(table.drop_columns([schema.AUDIO]).schema)
    features = Features({schema.AUDIO: Audio(sampling_rate=schema.SAMPLE_RATE), **features})
    return {b"huggingface": json.dumps({"info": {"features": features.to_dict()}}).encode()}


def _shard_table(rows: pa.Table, flacs: list[bytes]) -> pa.Table:
    keys = rows[schema.KEY].to_pylist()
    audio = pa.array([{"bytes": f, "path": f"{k}.flac"} for k, f in zip(keys, flacs)], AUDIO_TYPE)
    body = rows.drop_columns([c for c in POSITION_COLUMNS if c in rows.column_names])
    return pa.Table.from_arrays([audio, *body.columns], names=[schema.AUDIO, *body.column_names])


def export_hf(root: str, out: str | Path) -> ExportSummary:
    """Write the parquet dataset of ``root`` under the local dir ``out`` (one file per shard)."""
    source = export_table(root)
    out = Path(out)
    (out / DATA_DIR).mkdir(parents=True, exist_ok=True)
    shards = sorted(set(source.table[schema.SHARD].to_pylist()))
    files = []
    for number, shard in enumerate(shards):
        rows = source.table.filter(pc.equal(source.table[schema.SHARD], shard))
        flacs = [flac for _, flac in iter_members(root, rows)]
        table = _shard_table(rows, flacs)
        table = table.replace_schema_metadata(_features_metadata(table))
        name = f"{DATA_DIR}/{SPLIT}-{number:05d}-of-{len(shards):05d}.parquet"
        pq.write_table(table, out / name, compression="zstd")
        files.append(name)
    seconds = pc.sum(source.table[schema.AUDIO_DURATION_S]).as_py() or 0.0
    extra = "".join(f", token table `{t}`" for t in source.token_tables) + "".join(
        f", labels `{r}`" for r in source.label_rounds)
    (out / "README.md").write_text(CARD.format(split=SPLIT, data_dir=DATA_DIR, name=out.name, root=root,
                                               segments=source.table.num_rows, hours=seconds / 3600, extra=extra))
    logger.info("hf export of %s: %d segments in %d files", root, source.table.num_rows, len(files))
    return ExportSummary(str(out), source.table.num_rows, seconds, files + ["README.md"],
                         source.token_tables, source.label_rounds)
