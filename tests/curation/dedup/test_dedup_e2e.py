"""End to end: the demo corpus's planted duplicates through ``run_clean`` (local and real Ray)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from audiomill import layout, schema
from audiomill.audio import decode_flac
from audiomill.config import DedupConfig, RunnerConfig, load_config
from audiomill.execution.runners import LocalRunner, RayRunner
from audiomill.jobs.dedup import decide_duplicates
from audiomill.jobs.clean import run_clean
from audiomill.testing.corpus import DUP_SOURCE, LONG_SOURCE

pytestmark = pytest.mark.slow
DUP_GROUP = [DUP_SOURCE, "dups/en_f3_22k_copy.wav", "dups/en_f3_22k.flac", "dups/en_f3_16k.mp3"]
EXACT_TRIO = DUP_GROUP[:3]  # identical samples


def _clean(inputs, out: Path, runner: str, *extra: str) -> dict:
    cfg = load_config(inputs=[str(i) for i in inputs], output=str(out),
                      overrides=[f"runner.kind={runner}", "ingest.part_size=4", *extra])
    return run_clean(cfg).to_dict()


def _rows(out: Path, name: str) -> list[dict]:
    return pq.read_table(out / name).to_pylist()


def _relative(row: dict, root: Path) -> str:
    return str(Path(row[schema.SOURCE_URI]).relative_to(root))


@pytest.fixture(scope="module")
def local_run(demo_dataset):
    return demo_dataset  # the session's local clean of the demo corpus, same config (read only)


def test_planted_duplicates_go_to_rejects_pointing_at_the_kept_copy(local_run, demo_corpus):
    out, _ = local_run
    root = Path(demo_corpus.root)
    if not (root / DUP_GROUP[3]).exists():
        pytest.skip("no mp3 encoder")
    index, rejects = _rows(out, layout.INDEX_FILE), _rows(out, layout.REJECTS_FILE)
    kept = [r for r in index if _relative(r, root) in DUP_GROUP]
    assert len(kept) == 1  # one segment each; exactly one member of the group stays
    keeper = kept[0]
    dropped = {_relative(r, root): r for r in rejects if _relative(r, root) in DUP_GROUP}
    assert set(dropped) == set(DUP_GROUP) - {_relative(keeper, root)}
    for path, row in dropped.items():
        assert row[schema.DUPLICATE_OF] == keeper[schema.KEY] and row[schema.REJECT_STAGE] == "dedup"
        exact = path in EXACT_TRIO and _relative(keeper, root) in EXACT_TRIO
        assert row[schema.REJECT_REASON] == ("duplicate_exact" if exact else "duplicate_audio"), path
    # long_40s speaks en_us_16k's sentence in the same voice: one of the two copies goes
    long_keys = {r[schema.KEY] for r in index + rejects if _relative(r, root) == LONG_SOURCE and r[schema.KEY]}
    short = [r for r in index + rejects if _relative(r, root) == "speech/en/en_us_16k.wav"]
    if short[0].get(schema.REJECT_REASON):
        assert short[0][schema.REJECT_REASON] == "duplicate_audio" and short[0][schema.DUPLICATE_OF] in long_keys
    else:
        assert any(r[schema.DUPLICATE_OF] == short[0][schema.KEY] for r in rejects if r[schema.KEY] in long_keys)


def test_accounting_dedup_table_and_shards_agree(local_run):
    out, manifest = local_run
    index, rejects = _rows(out, layout.INDEX_FILE), _rows(out, layout.REJECTS_FILE)
    dups = [r for r in rejects if r[schema.REJECT_STAGE] == "dedup"]
    assert manifest["accounting"]["ok"] and manifest["counts"]["segments"] == len(index)
    assert manifest["dedup"]["dropped"] == len(dups) >= 4
    assert manifest["dedup"]["dropped_by_reason"] == {
        reason: n for reason, n in manifest["rejects_by_reason"].items() if reason.startswith("duplicate_")}
    table = {r["key"]: r for r in _rows(out, layout.DEDUP_FILE)}
    assert set(table) == {r[schema.KEY] for r in index} | {r[schema.KEY] for r in dups}
    assert all(table[r[schema.KEY]]["kept"] for r in index)
    assert all(table[r[schema.KEY]]["duplicate_of"] == r[schema.DUPLICATE_OF] for r in dups)
    assert {r[schema.DUPLICATE_OF] for r in dups} <= {r[schema.KEY] for r in index}
    in_shards = set()
    for shard in manifest["shards"]:
        data = (out / layout.SHARDS_DIR / shard["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            in_shards |= {m.name.split(".")[0] for m in tar.getmembers()}
    assert in_shards == {r[schema.KEY] for r in index}
    for row in index[:5] + dups:  # offsets point at the right FLAC, kept or held
        with open(Path(layout.shard_uri(str(out), row[schema.SHARD])), "rb") as fh:
            fh.seek(row[schema.TAR_OFFSET])
            audio = decode_flac(fh.read(row[schema.FLAC_BYTES]))
        assert abs(audio.size / schema.SAMPLE_RATE - row[schema.AUDIO_DURATION_S]) <= 1 / schema.SAMPLE_RATE
    assert all(r[schema.SHARD].startswith("held-dup-") for r in dups)
    features = [pq.read_table(p) for p in sorted((out / layout.PARTS_DIR).glob(f"*/{layout.FEATURES_FILE}"))]
    assert sum(f.num_rows for f in features) == len(index) + len(dups)
    assert all({schema.DEDUP_PCM_HASH, schema.DEDUP_AUDIO_MINHASH} <= set(f.column_names) for f in features if f.num_rows)
    assert not any(schema.is_dedup_feature(c) for c in pq.read_schema(out / layout.INDEX_FILE).names)


def _same_outputs(a: Path, b: Path, manifest_a: dict, manifest_b: dict) -> None:
    for name in (layout.INDEX_FILE, layout.REJECTS_FILE, layout.DEDUP_FILE):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for shards in ("shards", "held_shards"):
        assert [s["sha256"] for s in manifest_a[shards]] == [s["sha256"] for s in manifest_b[shards]]
    assert manifest_a["dedup"] == manifest_b["dedup"]


def test_rerun_gives_identical_outputs(demo_dataset_copy, demo_corpus):
    out, manifest = demo_dataset_copy
    before = {n: (out / n).read_bytes() for n in (layout.INDEX_FILE, layout.REJECTS_FILE, layout.DEDUP_FILE)}
    again = _clean([demo_corpus.root], out, "local")  # every part resumed, global step redone
    assert again["counts"]["parts_resumed"] == again["counts"]["parts"]
    assert all((out / n).read_bytes() == data for n, data in before.items())
    _same_outputs(out, out, manifest, again)


def test_global_step_on_ray_data_matches_local(local_run, ray_local):
    """The Ray Data edge search decides exactly what the in-process one decides, on the same parts
    (the part stages on Ray are compared with local ones in ``test_clean_e2e``)."""
    out, _ = local_run
    cfg = DedupConfig()  # what local_run used
    part_ids = sorted(int(p.name.split("-")[1]) for p in (out / layout.PARTS_DIR).glob("part-*"))
    local = decide_duplicates(str(out), cfg, part_ids, LocalRunner())
    with RayRunner(RunnerConfig(kind="ray", num_cpus=2), dedup_min_rows=0) as runner:
        on_ray = decide_duplicates(str(out), cfg, part_ids, runner)
    assert sum(not d.kept for d in on_ray.rows) >= 3
    assert on_ray.rows == local.rows
    assert on_ray.report == local.report
    assert on_ray.kept_features is local.kept_features is None  # no dedup.index: never read


def test_disabling_dedup_brings_the_duplicates_back(demo_corpus, tmp_path):
    root = Path(demo_corpus.root)
    subset = [root / p for p in (DUP_SOURCE, "dups/en_f3_22k_copy.wav")]
    first = _clean(subset, tmp_path / "ds", "local")
    assert first["counts"]["segments"] == 1 and first["counts"]["rejected_sources"] == 1
    second = _clean(subset, tmp_path / "ds", "local", "dedup.enabled=false")
    assert second["counts"]["segments"] == 2 and second["dedup"] == {"enabled": False}


def test_cross_run_index_dedups_a_new_batch_against_what_was_kept(demo_corpus, tmp_path):
    root, index_dir = Path(demo_corpus.root), tmp_path / "dedup-index"
    first_inputs = [root / DUP_SOURCE, root / "speech/de/de_44k.wav"]
    first = _clean(first_inputs, tmp_path / "batch1", "local", f"dedup.index={index_dir}")
    assert first["dedup"]["dropped"] == 0 and len(list(index_dir.glob("run-*.parquet"))) == 1
    kept_before = {r[schema.KEY] for r in _rows(tmp_path / "batch1", layout.INDEX_FILE)}
    second_inputs = [root / "dups/en_f3_22k.flac", root / "dups/en_f3_22k_copy.wav", root / "speech/fr/fr_f2_48k.wav"]
    for _ in range(2):  # a rerun must not deduplicate the batch against its own index file
        second = _clean(second_inputs, tmp_path / "batch2", "local", f"dedup.index={index_dir}")
        rejects = [r for r in _rows(tmp_path / "batch2", layout.REJECTS_FILE) if r[schema.REJECT_STAGE] == "dedup"]
        assert {_relative(r, root) for r in rejects} == {"dups/en_f3_22k.flac", "dups/en_f3_22k_copy.wav"}
        assert {r[schema.DUPLICATE_OF] for r in rejects} <= kept_before
        assert all("earlier run" in r[schema.REJECT_DETAIL] for r in rejects)
        assert second["counts"]["kept_sources"] == 1 and second["accounting"]["ok"]
    assert len(list(index_dir.glob("run-*.parquet"))) == 2
    assert json.loads(json.dumps(second["dedup"]))["index_files"] == 1


def test_a_shard_left_without_segments_is_removed_and_restored_on_rerun(demo_corpus, tmp_path):
    root, out = Path(demo_corpus.root), tmp_path / "ds"
    inputs = [root / DUP_SOURCE, root / "dups/en_f3_22k_copy.wav"]  # one part each: one part is all duplicate
    first = _clean(inputs, out, "local", "ingest.part_size=1")
    on_disk = sorted(p.name for p in (out / layout.SHARDS_DIR).glob("*.tar"))
    index = _rows(out, layout.INDEX_FILE)
    assert first["counts"]["shards"] == len(on_disk) == len({r[schema.SHARD] for r in index}) == 1
    assert on_disk == [s["name"] for s in first["shards"]]
    held = sorted(p.name for p in (out / layout.HELD_DIR).glob("held-dup-*.tar"))
    assert held == [s["name"] for s in first["held_shards"]] and len(held) == 1
    again = _clean(inputs, out, "local", "ingest.part_size=1")  # resumed: rebuilt from the held tar
    _same_outputs(out, out, first, again)
