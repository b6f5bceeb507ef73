"""Listing inputs into sources and parts: directories, manifests, tars, duplicates, fingerprints."""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audiomill import schema
from audiomill.config import IngestConfig
from audiomill import ingest
from audiomill.schema import RejectReason

CFG = IngestConfig()


def list_sources(inputs: list[str], cfg: IngestConfig = CFG,
                 stats: ingest.ListingStats | None = None) -> list[dict]:
    return list(ingest.iter_sources([str(i) for i in inputs], cfg, stats))


def uris(rows: list[dict]) -> list[str]:
    return [r[schema.SOURCE_URI] for r in rows]


def reasons(rows: list[dict]) -> list[str | None]:
    return [r.get(schema.REJECT_REASON) for r in rows]


@pytest.fixture
def tree(tmp_path: Path, write_tone) -> Path:
    """A nested input dir: audio at three depths, plus files the default globs skip."""
    write_tone("in/b.wav")
    write_tone("in/a.flac")
    write_tone("in/sub/c.wav")
    write_tone("in/sub/deeper/d.ogg")
    write_tone("in/a-side.WAV")  # globs match case-insensitively
    (tmp_path / "in/notes.txt").write_text("not audio")
    (tmp_path / "in/sub/cover.jpg").write_bytes(b"\xff\xd8\xff")
    return tmp_path / "in"


def test_directory_listing_is_recursive_sorted_and_filtered(tree: Path):
    stats = ingest.ListingStats()
    rows = list_sources([tree], stats=stats)
    rel = [os.path.relpath(u, tree) for u in uris(rows)]
    assert rel == ["a-side.WAV", "a.flac", "b.wav", "sub/c.wav", "sub/deeper/d.ogg"]
    assert uris(rows) == sorted(uris(rows))
    assert stats.skipped_by_filter == 2
    assert sorted(os.path.basename(p) for p in stats.skipped_examples) == ["cover.jpg", "notes.txt"]
    assert all(r.get(schema.REJECT_REASON) is None for r in rows)
    for row in rows:
        assert row[schema.READ_URI] == row[schema.SOURCE_URI]
        assert row[schema.SOURCE_BYTES] == os.path.getsize(row[schema.SOURCE_URI])
        assert row[schema.SOURCE_OFFSET] is None
        assert row[schema.METADATA_JSON] is None


def test_include_and_exclude_globs(tree: Path):
    stats = ingest.ListingStats()
    cfg = IngestConfig(include=["*.wav"], exclude=["c.*"])
    rows = list_sources([tree], cfg, stats)
    assert [os.path.relpath(u, tree) for u in uris(rows)] == ["a-side.WAV", "b.wav"]
    assert stats.skipped_by_filter == 5  # a.flac, d.ogg, c.wav, notes.txt, cover.jpg


def test_empty_include_keeps_every_file(tree: Path):
    stats = ingest.ListingStats()
    rows = list_sources([tree], IngestConfig(include=[]), stats)
    assert len(rows) == 7
    assert stats.skipped_by_filter == 0


def test_a_single_file_input_is_listed_even_if_globs_would_skip_it(tmp_path: Path, write_tone):
    path = write_tone("odd.wav").rename(tmp_path / "odd.bin")
    rows = list_sources([path], IngestConfig(include=["*.wav"]))
    assert uris(rows) == [str(path)]


def test_source_id_is_stable_and_distinct(tree: Path):
    first = list_sources([tree])
    second = list_sources([tree])
    ids = [r[schema.SOURCE_ID] for r in first]
    assert ids == [r[schema.SOURCE_ID] for r in second]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert ingest.source_id("/data/x.wav") == ingest.source_id("/data/x.wav")
    assert ingest.source_id("/data/x.wav") != ingest.source_id("/data/y.wav")


def _manifest_dir(tmp_path: Path, write_tone) -> Path:
    write_tone("m/audio/one.wav")
    write_tone("m/audio/two.wav", seconds=0.7)
    return tmp_path / "m"


MANIFEST_ROWS = [
    {"path": "audio/one.wav", "license": "cc-by-4.0", "source_url": "https://example.org/1"},
    {"path": "audio/two.wav", "license": "cc0", "source_url": "https://example.org/2"},
]


def _write_manifest(root: Path, fmt: str, rows: list[dict]) -> Path:
    path = root / f"manifest.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "csv":
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_manifest_resolves_relative_paths_and_keeps_extra_columns(tmp_path, write_tone, fmt):
    root = _manifest_dir(tmp_path, write_tone)
    manifest = _write_manifest(root, fmt, MANIFEST_ROWS)
    rows = list_sources([manifest])
    assert uris(rows) == [str(root / "audio/one.wav"), str(root / "audio/two.wav")]
    assert reasons(rows) == [None, None]
    for row, expected in zip(rows, MANIFEST_ROWS):
        assert row[schema.SOURCE_BYTES] == os.path.getsize(row[schema.SOURCE_URI])
        metadata = json.loads(row[schema.METADATA_JSON])
        assert metadata == {"license": expected["license"], "source_url": expected["source_url"]}


def test_manifest_row_without_a_path_is_a_bad_manifest_row(tmp_path, write_tone):
    root = _manifest_dir(tmp_path, write_tone)
    manifest = _write_manifest(root, "jsonl", [
        MANIFEST_ROWS[0], {"license": "cc0", "source_url": "https://example.org/x"}, MANIFEST_ROWS[1]])
    rows = list_sources([manifest])
    assert reasons(rows) == [None, RejectReason.BAD_MANIFEST_ROW.value, None]
    bad = rows[1]
    assert bad[schema.REJECT_STAGE] == "ingest"
    assert bad[schema.REJECT_DETAIL] == "line 2: no path/uri/audio_path/audio/file column"  # 1-based
    assert len({r[schema.SOURCE_ID] for r in rows}) == 3


def test_manifest_lines_that_are_not_json_objects_are_bad_rows(tmp_path, write_tone):
    root = _manifest_dir(tmp_path, write_tone)
    manifest = root / "manifest.jsonl"
    manifest.write_text(json.dumps(MANIFEST_ROWS[0]) + "\n{not json\n[1, 2]\n\n")
    rows = list_sources([manifest])
    assert reasons(rows) == [None, RejectReason.BAD_MANIFEST_ROW.value, RejectReason.BAD_MANIFEST_ROW.value]


def test_manifest_row_for_a_missing_file_is_a_read_error(tmp_path, write_tone):
    root = _manifest_dir(tmp_path, write_tone)
    manifest = _write_manifest(root, "csv", [
        MANIFEST_ROWS[0], {"path": "audio/gone.wav", "license": "cc0", "source_url": "u"}])
    rows = list_sources([manifest])
    assert reasons(rows) == [None, RejectReason.READ_ERROR.value]
    missing = rows[1]
    assert missing[schema.SOURCE_URI] == str(root / "audio/gone.wav")
    assert missing[schema.REJECT_STAGE] == "ingest"
    assert json.loads(missing[schema.METADATA_JSON]) == {"license": "cc0", "source_url": "u"}


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def test_tar_members_are_sources_read_by_byte_range(tmp_path, write_tone):
    members = {name: write_tone(f"src/{name}", seconds=0.2 + 0.1 * i).read_bytes()
               for i, name in enumerate(["x/one.wav", "two.flac", "three.wav"])}
    tar_path = tmp_path / "bundle.tar"
    with tarfile.open(tar_path, "w") as archive:
        for name, data in members.items():
            _add(archive, name, data)
        _add(archive, "README.txt", b"skip me")
    stats = ingest.ListingStats()
    rows = list_sources([tar_path], stats=stats)
    assert uris(rows) == [f"{tar_path}#{name}" for name in members]
    assert reasons(rows) == [None, None, None]
    assert stats.skipped_by_filter == 1
    blob = tar_path.read_bytes()
    for row, data in zip(rows, members.values()):
        assert row[schema.READ_URI] == str(tar_path)
        start, size = row[schema.SOURCE_OFFSET], row[schema.SOURCE_BYTES]
        assert size == len(data)
        assert blob[start:start + size] == data


def test_tar_in_a_directory_is_expanded(tmp_path, write_tone):
    data = write_tone("src/a.wav").read_bytes()
    (tmp_path / "in").mkdir()
    with tarfile.open(tmp_path / "in/pack.tar", "w") as archive:
        _add(archive, "a.wav", data)
    write_tone("in/z.wav")
    rows = list_sources([tmp_path / "in"])
    assert uris(rows) == [f"{tmp_path}/in/pack.tar#a.wav", f"{tmp_path}/in/z.wav"]


def test_unsafe_tar_members_are_rejected(tmp_path, write_tone):
    data = write_tone("src/a.wav").read_bytes()
    tar_path = tmp_path / "evil.tar"
    with tarfile.open(tar_path, "w") as archive:
        _add(archive, "../x.wav", data)
        _add(archive, "/etc/x.wav", data)
        _add(archive, "ok/../../y.wav", data)
        link = tarfile.TarInfo("link.wav")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
        _add(archive, "safe.wav", data)
    rows = list_sources([tar_path])
    by_member = {r[schema.SOURCE_URI].split("#", 1)[1]: r for r in rows}
    assert set(by_member) == {"../x.wav", "/etc/x.wav", "ok/../../y.wav", "link.wav", "safe.wav"}
    for name in ("../x.wav", "/etc/x.wav", "ok/../../y.wav", "link.wav"):
        assert by_member[name][schema.REJECT_REASON] == RejectReason.UNSAFE_PATH.value, name
        assert by_member[name][schema.REJECT_STAGE] == "ingest"
    assert by_member["safe.wav"].get(schema.REJECT_REASON) is None


def test_unreadable_tar_is_one_read_error(tmp_path):
    tar_path = tmp_path / "broken.tar"
    tar_path.write_bytes(b"this is not a tar archive at all" * 40)
    rows = list_sources([tar_path])
    assert uris(rows) == [str(tar_path)]
    assert reasons(rows) == [RejectReason.READ_ERROR.value]


def test_same_dir_twice_marks_second_copies_duplicate(tree: Path):
    first = list_sources([tree])
    both = list_sources([tree, tree])
    assert len(both) == 2 * len(first)
    assert both[:len(first)] == first
    copies = both[len(first):]
    assert uris(copies) == uris(first)
    assert reasons(copies) == [RejectReason.DUPLICATE_INPUT.value] * len(first)
    assert all(r[schema.REJECT_STAGE] == "ingest" for r in copies)
    ids = [r[schema.SOURCE_ID] for r in both]
    assert len(set(ids)) == len(ids)
    # duplicate ids are stable across listings too
    assert [r[schema.SOURCE_ID] for r in list_sources([tree, tree])] == ids


def test_iter_parts_cuts_into_part_size_chunks(tree: Path):
    sources = list_sources([tree])
    parts = list(ingest.iter_parts(iter(sources), part_size=2))
    assert [p.num_rows for p in parts] == [2, 2, 1]
    assert [p.schema for p in parts] == [ingest.PART_SCHEMA] * 3
    for number, part in enumerate(parts):
        assert set(part[schema.PART_ID].to_pylist()) == {number}
        assert set(part[schema.PART_SOURCES].to_pylist()) == {part.num_rows}
        fingerprints = set(part[schema.PART_FINGERPRINT].to_pylist())
        assert len(fingerprints) == 1 and None not in fingerprints
        assert fingerprints == {ingest.part_fingerprint(part)}
    assert sum((p[schema.SOURCE_URI].to_pylist() for p in parts), []) == uris(sources)
    assert len({p[schema.PART_FINGERPRINT][0].as_py() for p in parts}) == 3


def test_iter_parts_keeps_reject_columns(tmp_path, write_tone):
    root = _manifest_dir(tmp_path, write_tone)
    manifest = _write_manifest(root, "jsonl", [MANIFEST_ROWS[0], {"license": "x"}])
    (part,) = ingest.iter_parts(ingest.iter_sources([str(manifest)], CFG), part_size=10)
    assert part[schema.REJECT_REASON].to_pylist() == [None, RejectReason.BAD_MANIFEST_ROW.value]
    assert part[schema.REJECT_STAGE].to_pylist() == [None, "ingest"]


def test_part_fingerprint_is_stable_and_tracks_file_sizes(tree: Path):
    def fingerprints() -> list[str]:
        parts = ingest.iter_parts(ingest.iter_sources([str(tree)], CFG), part_size=3)
        return [p[schema.PART_FINGERPRINT][0].as_py() for p in parts]

    before = fingerprints()
    assert before == fingerprints()
    with open(tree / "sub/c.wav", "ab") as fh:  # 4th source: in part 1
        fh.write(b"\x00\x00")
    after = fingerprints()
    assert after[0] == before[0]
    assert after[1] != before[1]


def test_check_inputs(tree: Path, tmp_path: Path):
    ingest.check_inputs([str(tree), str(tree / "b.wav")])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ingest.check_inputs([str(tree), str(tmp_path / "nowhere")])
    with pytest.raises(FileNotFoundError):
        ingest.check_inputs([])


def test_non_utf8_file_name_is_an_unsafe_path_that_still_fits_a_part(tmp_path, write_tone):
    data = write_tone("src/a.wav").read_bytes()
    root = tmp_path / "names"
    root.mkdir()
    with open(os.path.join(os.fsencode(root), b"bad\xff.wav"), "wb") as fh:
        fh.write(data)
    rows = list_sources([root])
    assert reasons(rows) == [RejectReason.UNSAFE_PATH.value]
    (part,) = ingest.iter_parts(iter(rows), part_size=4)
    assert part[schema.SOURCE_URI][0].as_py().endswith("bad\\xff.wav")
