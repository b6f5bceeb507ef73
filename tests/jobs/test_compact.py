"""`audiomill compact`: small shards repacked into packs of a target size, as a new dataset."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from audiomill import layout, schema
from audiomill.data.ranged_read import read_segment
from audiomill.formats.shards import read_members
from audiomill.jobs.compact import CompactError, CompactOptions, compact_dataset
from audiomill.jobs.takedown import TakedownRequest, run_takedown

pytestmark = pytest.mark.slow


def _index(root: Path):
    return pq.read_table(root / layout.INDEX_FILE)


@pytest.fixture(scope="module")
def release(demo_dataset, tmp_path_factory) -> tuple[Path, Path, int]:
    """The demo dataset compacted with a target of 2.5x its median shard (so packs span parts)."""
    root, manifest = demo_dataset
    sizes = sorted(s["bytes"] for s in manifest["shards"])
    target = int(2.5 * sizes[len(sizes) // 2])
    out = tmp_path_factory.mktemp("compact") / "release"
    compact_dataset(str(root), str(out), CompactOptions(target_bytes=target))
    return root, out, target


def test_packs_fill_to_the_target_and_hold_every_segment_byte_for_byte(release):
    root, out, target = release
    before, after = _index(root), _index(out)
    packs = sorted(p.name for p in (out / layout.SHARDS_DIR).iterdir())
    assert len(packs) < len(list((root / layout.SHARDS_DIR).iterdir()))
    assert all((out / layout.SHARDS_DIR / p).stat().st_size >= target for p in packs[:-1])
    assert after[schema.KEY].to_pylist() == before[schema.KEY].to_pylist()
    assert set(after[schema.SHARD].to_pylist()) == set(packs)
    assert after.drop_columns([schema.SHARD, schema.TAR_OFFSET]).equals(before.drop_columns([schema.SHARD,
                                                                                             schema.TAR_OFFSET]))
    source_members: dict[str, list] = {}
    for shard in sorted(set(before[schema.SHARD].to_pylist())):
        source_members |= read_members(str(root / layout.SHARDS_DIR / shard))
    source_flac = {k: d for k, ms in source_members.items() for i, d in ms if i.name.endswith(".flac")}
    for pack in packs:
        for key, members in read_members(str(out / layout.SHARDS_DIR / pack)).items():
            assert [(i.name, d) for i, d in members] == [(i.name, d) for i, d in source_members.pop(key)]
    assert not source_members  # every kept segment is in exactly one pack
    for row in after.to_pylist():  # the index's offsets read the same FLAC bytes as the source's
        audio = read_segment(str(out), row[schema.SHARD], row[schema.KEY], row[schema.TAR_OFFSET],
                             row[schema.FLAC_BYTES])
        assert audio.flac == source_flac[row[schema.KEY]]
        assert audio.meta[schema.KEY] == row[schema.KEY]


def test_manifest_rejects_held_and_sidecars_stay_valid(release):
    root, out, _ = release
    manifest = json.loads((out / layout.MANIFEST_FILE).read_text())
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / layout.SHARDS_DIR).iterdir()}
    assert {s["name"]: s["sha256"] for s in manifest["shards"]} == on_disk
    assert manifest["counts"]["shards"] == len(on_disk)
    assert manifest["compacted"]["source_shards"] == json.loads(
        (root / layout.MANIFEST_FILE).read_text())["counts"]["shards"]
    assert (out / layout.REJECTS_FILE).read_bytes() == (root / layout.REJECTS_FILE).read_bytes()
    for held in manifest["held_shards"]:
        assert (out / layout.HELD_DIR / held["name"]).read_bytes() == (root / layout.HELD_DIR / held["name"]).read_bytes()
    assert (out / layout.DEDUP_FILE).read_bytes() == (root / layout.DEDUP_FILE).read_bytes()
    assert not (out / layout.PARTS_DIR).exists()


def test_compacting_twice_gives_the_same_bytes_and_a_rerun_finishes_an_interrupted_one(release, tmp_path):
    root, out, target = release
    again = tmp_path / "again"
    (again / layout.SHARDS_DIR).mkdir(parents=True)  # an interrupted compact: a pack, no manifest
    (again / layout.SHARDS_DIR / "shard-pack-000007.tar").write_bytes(b"partial")
    compact_dataset(str(root), str(again), CompactOptions(target_bytes=target))
    for name in (layout.INDEX_FILE, *(f"{layout.SHARDS_DIR}/{p.name}" for p in (out / layout.SHARDS_DIR).iterdir())):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    assert not (again / layout.SHARDS_DIR / "shard-pack-000007.tar").exists()


def test_max_samples_closes_a_pack(demo_dataset, tmp_path):
    root, _ = demo_dataset
    manifest = compact_dataset(str(root), str(tmp_path / "small"), CompactOptions(target_bytes=1 << 40, max_samples=3))
    assert [s.samples for s in manifest.shards][:-1] == [3] * (len(manifest.shards) - 1)
    assert sum(s.samples for s in manifest.shards) == _index(root).num_rows


def test_takedown_works_on_a_release(release, tmp_path):
    import shutil

    _, out, _ = release
    copy = tmp_path / "release"
    shutil.copytree(out, copy)
    index = _index(copy)
    source = index[schema.SOURCE_URI][0].as_py()
    gone = set(index.filter(pc.equal(index[schema.SOURCE_URI], source))[schema.KEY].to_pylist())
    run_takedown(str(copy), TakedownRequest(source=source, requested_by="test"))
    left = _index(copy)
    assert not gone & set(left[schema.KEY].to_pylist())
    in_packs = set().union(*(read_members(str(p)) for p in (copy / layout.SHARDS_DIR).iterdir()))
    assert in_packs == set(left[schema.KEY].to_pylist())


def test_refuses_to_write_over_a_dataset_or_into_itself(demo_dataset, release, tmp_path):
    root, _ = demo_dataset
    _, out, _ = release
    with pytest.raises(CompactError, match="must not be the dataset itself"):
        compact_dataset(str(root), str(root))
    with pytest.raises(CompactError, match="already holds a dataset"):
        compact_dataset(str(root), str(out))
    foreign = tmp_path / "foreign"
    (foreign / layout.SHARDS_DIR).mkdir(parents=True)
    (foreign / layout.SHARDS_DIR / "shard-000000-000.tar").write_bytes(b"someone else's")
    with pytest.raises(CompactError, match="holds other tars"):
        compact_dataset(str(root), str(foreign))
    result = subprocess.run([sys.executable, "-m", "audiomill", "compact", str(tmp_path), "--out", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "manifest" in result.stderr
    assert not (tmp_path / "x" / layout.SHARDS_DIR).exists()
