"""Listing never reads an audiomill dataset (its own output above all) unless asked, and refuses
input/output overlaps it cannot make safe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from audiomill import layout, schema
from audiomill.config import IngestConfig, load_config
from audiomill import ingest
from audiomill.testing.signals import espeak, resample, write_audio

ALL_FILES = IngestConfig(include=[])  # every file is listed, so nothing hides behind the globs


def _uris(root: Path, cfg: IngestConfig = ALL_FILES, **kwargs) -> list[str]:
    return [str(Path(r[schema.SOURCE_URI]).relative_to(root))
            for r in ingest.iter_sources([str(root)], cfg, **kwargs)]


def _dataset(path: Path, *, finished: bool = True) -> Path:
    """The files a clean job leaves: shards, parts, tables, manifest (content is not the point)."""
    (path / "shards").mkdir(parents=True)
    (path / "shards/shard-000000-000.tar").write_bytes(b"not a tar archive " * 64)
    (path / "_parts/part-000000").mkdir(parents=True)
    (path / "_parts/part-000000/sources.parquet").write_bytes(b"PAR1")
    if finished:
        (path / layout.INDEX_FILE).write_bytes(b"PAR1")
        (path / layout.MANIFEST_FILE).write_text(json.dumps({"format": "audiomill-dataset/1"}))
    return path


@pytest.fixture
def corpus(tmp_path: Path, write_tone) -> Path:
    write_tone("corpus/a.wav")
    write_tone("corpus/sub/b.wav")
    return tmp_path / "corpus"


def test_a_dataset_inside_an_input_is_not_listed_unless_asked(corpus: Path):
    _dataset(corpus / "ds")
    stats = ingest.ListingStats()
    assert _uris(corpus, stats=stats) == ["a.wav", "sub/b.wav"]
    assert stats.skipped_datasets == [str(corpus / "ds")]
    asked = _uris(corpus, IngestConfig(include=[], include_datasets=True))
    assert "ds/shards/shard-000000-000.tar" in asked and "ds/manifest.json" in asked


def test_a_dataset_being_written_or_locked_is_skipped_too(corpus: Path):
    _dataset(corpus / "running", finished=False)  # only _parts/ so far
    (corpus / "locked").mkdir()
    (corpus / "locked" / layout.LOCK_FILE).write_text("{}")
    (corpus / "locked/early.wav").write_bytes(b"RIFF")
    assert _uris(corpus) == ["a.wav", "sub/b.wav"]


def test_a_foreign_manifest_json_does_not_make_a_dataset(corpus: Path):
    (corpus / "sub/manifest.json").write_text(json.dumps({"format": "something-else"}))
    assert _uris(corpus) == ["a.wav", "sub/b.wav", "sub/manifest.json"]


def test_the_output_dir_is_skipped_even_before_it_holds_anything(corpus: Path):
    (corpus / "out").mkdir()
    (corpus / "out/x.wav").write_bytes(b"RIFF")
    assert _uris(corpus, output=str(corpus / "out")) == ["a.wav", "sub/b.wav"]


def test_a_dataset_or_its_shards_given_as_the_input_is_skipped_whole(tmp_path: Path):
    ds = _dataset(tmp_path / "ds")
    for root in (ds, ds / "shards"):
        stats = ingest.ListingStats()
        assert list(ingest.iter_sources([str(root)], ALL_FILES, stats)) == []
        assert stats.skipped_datasets
    # a single file named explicitly is always read
    one = ingest.iter_sources([str(ds / "shards/shard-000000-000.tar")], ALL_FILES)
    assert [r[schema.REJECT_REASON] for r in one] == ["read_error"]  # not a real tar


def test_overlapping_input_and_output(corpus: Path, tmp_path: Path):
    check = ingest.check_output_not_inside_inputs
    check([str(corpus)], str(corpus / "ds"))  # output inside the input: listing skips it
    check([str(corpus / "a.wav")], str(corpus))  # a file inside the output is read once
    with pytest.raises(ingest.InputOutputOverlapError, match="is also an input"):
        check([str(tmp_path / "other"), str(corpus)], str(corpus) + "/")
    with pytest.raises(ingest.InputOutputOverlapError, match="is also an input"):
        check(["s3://bucket/raw"], "s3://bucket/raw/")
    with pytest.raises(ingest.InputOutputOverlapError, match="lies inside --out"):
        check([str(corpus / "sub")], str(corpus))


@pytest.mark.slow
def test_cleaning_into_a_dir_inside_the_input_twice_lists_the_same_inputs(tmp_path: Path):
    """The issue's reproduction: `clean corpus --out corpus/ds` twice; the rerun must list the same
    inputs (not its own shard members) and reject none of them as duplicates of its output."""
    corpus = tmp_path / "corpus"
    for i, text in enumerate(["The quick brown fox jumps over the lazy dog.",
                              "Seven silver swans swam silently seaward at dawn."]):
        audio, sr = espeak(text, voice="en+m3" if i else "en+f3")
        write_audio(corpus / f"speech-{i}.wav", resample(audio, sr, 16_000), 16_000)
    out = corpus / "ds"
    cfg = load_config(inputs=[str(corpus)], output=str(out), overrides=["runner.kind=local"])
    from audiomill.jobs.clean import run_clean

    first = run_clean(cfg).to_dict()
    assert first["counts"]["inputs"] == 2 and (out / "shards").is_dir()
    shutil.rmtree(out / layout.PARTS_DIR)  # a finished dataset without its work dir: the manifest marks it
    second = run_clean(cfg).to_dict()
    assert second["counts"]["inputs"] == 2
    assert second["counts"] == first["counts"]


def test_datasets_under_an_s3_input_are_skipped_too(tmp_path: Path, write_tone):
    from audiomill import storage
    from audiomill.testing.s3 import create_bucket, moto_s3_server

    with moto_s3_server():
        root = storage.join(create_bucket("audiomill-listing"), "corpus")
        storage.write_file(storage.join(root, "a.wav"), str(write_tone("a.wav")))
        storage.write_bytes(storage.join(root, "ds/shards/shard-000000-000.tar"), b"x")
        storage.write_text(storage.join(root, "ds/manifest.json"), json.dumps({"format": "audiomill-dataset/1"}))
        storage.write_bytes(storage.join(root, "run/_parts/part-000000/sources.parquet"), b"x")
        storage.write_bytes(storage.join(root, "zz/b.wav"), b"RIFF")
        stats = ingest.ListingStats()
        listed = [r[schema.SOURCE_URI] for r in ingest.iter_sources([root + "/"], ALL_FILES, stats)]
        assert listed == [f"{root}/a.wav", f"{root}/zz/b.wav"]
        assert stats.skipped_datasets == [f"{root}/ds", f"{root}/run"]
        with pytest.raises(ingest.InputOutputOverlapError, match="lies inside --out"):
            ingest.check_output_not_inside_inputs([f"{root}/zz"], root)
        ingest.check_output_not_inside_inputs([f"{root}/a.wav"], root)  # an object, not a prefix


def test_a_job_writing_onto_its_input_is_refused_before_any_work(corpus: Path):
    from audiomill.jobs.clean import run_clean

    cfg = load_config(inputs=[str(corpus)], output=str(corpus), overrides=["runner.kind=local"])
    with pytest.raises(ingest.InputOutputOverlapError, match="is also an input"):
        run_clean(cfg)
    assert sorted(p.name for p in corpus.iterdir()) == ["a.wav", "sub"]  # nothing written
