"""A copy of the licensed dataset with a token table and a label round, for export round trips."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audiomill import layout, schema


@pytest.fixture(scope="module")
def labeled_dataset(licensed_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("export") / "dataset"
    shutil.copytree(licensed_dataset.root, root)
    keys = sorted(pq.read_table(root / layout.INDEX_FILE)[schema.KEY].to_pylist())
    tokens = root / layout.TOKENS_DIR / "semantic@1"
    tokens.mkdir(parents=True)
    pq.write_table(pa.table({schema.KEY: keys, "tokens": [[n, 7, n * 3] for n in range(len(keys))]}),
                   tokens / "part-000000.parquet")
    labels = root / layout.LABELS_DIR / "round-001"
    labels.mkdir(parents=True)
    pq.write_table(pa.table({schema.KEY: keys[:3], "label_emotion": ["calm", "happy", "calm"]}),
                   labels / "accepted.parquet")
    return root
