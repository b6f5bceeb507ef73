"""Invariant: the tars under ``shards/`` hold exactly the index's keys, after clean and curate."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from audiomill import layout
from audiomill.jobs.curate import curate_dataset

STRICT = "rules: {q_snr_db: {min: 25}, audio_duration_s: {min: 2.0}}\n"


def shard_keys(root: Path) -> list[str]:
    keys = []
    for tar_path in sorted((root / layout.SHARDS_DIR).glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            keys += [m.name.split(".", 1)[0] for m in tar.getmembers() if m.name.endswith(".flac")]
    return sorted(keys)


def index_keys(root: Path) -> list[str]:
    return sorted(pq.read_table(root / layout.INDEX_FILE)["key"].to_pylist())


@pytest.fixture(scope="module")
def cleaned(demo_dataset) -> Path:
    return demo_dataset[0]  # curate only reads it (asserted below)


def test_clean_shards_hold_exactly_the_index(cleaned: Path):
    assert shard_keys(cleaned) == index_keys(cleaned)


def test_curate_moves_rejected_audio_out_of_shards_and_back(cleaned: Path, tmp_path: Path):
    policy = tmp_path / "strict.yaml"
    policy.write_text(STRICT)
    strict = curate_dataset(str(cleaned), str(policy), str(tmp_path / "strict"))
    assert 0 < strict.counts.segments < len(index_keys(cleaned))
    assert shard_keys(tmp_path / "strict") == index_keys(tmp_path / "strict")
    assert sum(s.samples for s in strict.shards) == strict.counts.segments
    back = curate_dataset(str(tmp_path / "strict"), "default", str(tmp_path / "back"))
    assert shard_keys(tmp_path / "back") == index_keys(tmp_path / "back") == index_keys(cleaned)
    assert sum(s.samples for s in back.shards) == back.counts.segments
    # the source dataset's tars were never modified through the hard links
    assert shard_keys(cleaned) == index_keys(cleaned)
