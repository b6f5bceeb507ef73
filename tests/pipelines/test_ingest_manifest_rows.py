"""Manifest rows that cannot be read each get their own precise reject (1-based line numbers);
a file that is not UTF-8 or not parseable is one reject naming it; rows are confined to a root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from audiomill import schema
from audiomill.config import IngestConfig
from audiomill import ingest
from audiomill.schema import RejectReason


def _sources(manifest: Path, **cfg) -> list[dict]:
    return list(ingest.iter_sources([str(manifest)], IngestConfig(**cfg)))


def _verdicts(rows: list[dict]) -> list[tuple[str | None, str | None]]:
    return [(r.get(schema.REJECT_REASON), r.get(schema.REJECT_DETAIL)) for r in rows]


def test_each_bad_jsonl_row_says_what_is_wrong_on_which_line(tmp_path, write_tone):
    write_tone("m/a.wav")
    manifest = tmp_path / "m/manifest.jsonl"
    manifest.write_text("\n".join([
        json.dumps({"path": "a.wav"}),
        "{not json",
        json.dumps({"path": 12345}),
        "",  # blank lines are skipped but still counted
        json.dumps({"path": ["a.wav", "b.wav"]}),
        json.dumps([1, 2]),
        json.dumps({"license": "cc0"}),
    ]) + "\n")
    rows = _sources(manifest)
    bad = RejectReason.BAD_MANIFEST_ROW.value
    assert _verdicts(rows) == [
        (None, None),
        (bad, "line 2: not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        (bad, "line 3: 'path' is a number (12345), not a string"),
        (bad, "line 5: 'path' is a list ([\"a.wav\", \"b.wav\"]), not a string"),
        (bad, "line 6: a JSON list, not an object"),
        (bad, "line 7: no path/uri/audio_path/audio/file column"),
    ]
    assert len({r[schema.SOURCE_ID] for r in rows}) == len(rows)
    assert rows[2][schema.SOURCE_URI] == f"{manifest}#line3"


def test_csv_and_parquet_rows_are_numbered_from_one(tmp_path, write_tone):
    write_tone("m/a.wav")
    csv_manifest = tmp_path / "m/list.csv"
    csv_manifest.write_text("path,license\na.wav,cc0\n,cc0\n")
    assert _verdicts(_sources(csv_manifest))[1] == (
        RejectReason.BAD_MANIFEST_ROW.value, "line 3: no path/uri/audio_path/audio/file column")
    parquet_manifest = tmp_path / "m/list.parquet"
    pq.write_table(pa.table({"path": ["a.wav", None]}), parquet_manifest)
    assert _verdicts(_sources(parquet_manifest))[1] == (
        RejectReason.BAD_MANIFEST_ROW.value, "row 2: no path/uri/audio_path/audio/file column")


def test_a_non_utf8_manifest_is_one_reject_naming_the_file(tmp_path, write_tone):
    write_tone("m/a.wav")
    manifest = tmp_path / "m/latin1.jsonl"
    manifest.write_bytes(json.dumps({"path": "a.wav"}).encode() + b"\n" +
                         "{\"path\": \"caf\u00e9.wav\"}\n".encode("latin-1"))
    (row,) = _sources(manifest)
    assert row[schema.REJECT_REASON] == RejectReason.BAD_MANIFEST_ROW.value
    assert row[schema.SOURCE_URI] == str(manifest)
    assert row[schema.REJECT_DETAIL] == (f"manifest {manifest} is not valid UTF-8 (near byte 31); "
                                         "save it as UTF-8")


def test_an_unparseable_parquet_manifest_is_one_reject(tmp_path):
    manifest = tmp_path / "broken.parquet"
    manifest.write_bytes(b"PAR1 this is not parquet")
    (row,) = _sources(manifest)
    assert row[schema.REJECT_REASON] == RejectReason.BAD_MANIFEST_ROW.value
    assert row[schema.REJECT_DETAIL].startswith(f"manifest {manifest} unreadable: ")


def _escape_manifest(tmp_path: Path, write_tone) -> Path:
    """A manifest in m/ naming a file inside, one outside via '..', one by absolute path, and a
    symlink inside m/ that points outside."""
    write_tone("m/inside.wav")
    write_tone("m/inside2.wav")
    outside = write_tone("elsewhere/secret.wav")
    os.symlink(outside, tmp_path / "m/link.wav")
    manifest = tmp_path / "m/manifest.jsonl"
    manifest.write_text("".join(json.dumps({"path": p}) + "\n" for p in
                                ["inside.wav", "../elsewhere/secret.wav", str(outside), "link.wav",
                                 str(tmp_path / "m/inside2.wav")]))
    return manifest


def test_rows_must_resolve_inside_the_manifest_folder_by_default(tmp_path, write_tone):
    manifest = _escape_manifest(tmp_path, write_tone)
    rows = _sources(manifest)
    reasons = [r.get(schema.REJECT_REASON) for r in rows]
    unsafe = RejectReason.UNSAFE_PATH.value
    assert reasons == [None, unsafe, unsafe, unsafe, None]
    assert rows[1][schema.REJECT_DETAIL].startswith(
        f"line 2: path resolves outside the manifest's folder ({tmp_path / 'm'}); set ingest.manifest_root")
    assert rows[3][schema.REJECT_DETAIL].startswith("line 4: ")
    assert rows[1][schema.SOURCE_BYTES] is None  # never even stat'ed


def test_manifest_root_widens_the_confinement(tmp_path, write_tone):
    manifest = _escape_manifest(tmp_path, write_tone)
    rows = _sources(manifest, manifest_root=str(tmp_path))
    assert [r.get(schema.REJECT_REASON) for r in rows] == [None] * 5
    narrow = _sources(manifest, manifest_root=str(tmp_path / "elsewhere"))
    assert [r.get(schema.REJECT_REASON) for r in narrow] == [
        "unsafe_path", None, None, None, "unsafe_path"]
    assert narrow[0][schema.REJECT_DETAIL] == (
        f"line 1: path resolves outside ingest.manifest_root ({tmp_path / 'elsewhere'})")


def test_absolute_paths_can_be_allowed_but_relative_ones_stay_confined(tmp_path, write_tone):
    manifest = _escape_manifest(tmp_path, write_tone)
    rows = _sources(manifest, manifest_absolute_paths=True)
    assert [r.get(schema.REJECT_REASON) for r in rows] == [None, "unsafe_path", None, "unsafe_path", None]


def test_etc_shadow_is_never_opened(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"path": "/etc/shadow"}) + "\n" + json.dumps({"path": "../../../../etc/shadow"}) + "\n")
    rows = _sources(manifest)
    assert [r[schema.REJECT_REASON] for r in rows] == ["unsafe_path", "unsafe_path"]
