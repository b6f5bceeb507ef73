"""`audiomill takedown` on a real dataset: removed audio and keys are nowhere, everything else is
byte-identical; nothing-matches, dry run, idempotence, resume after an interruption."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audiomill import layout, schema
from audiomill.cli import takedown as takedown_cli
from audiomill.data import LoaderOptions, SegmentDataset
from audiomill.jobs import takedown_files
from audiomill.jobs.takedown import TakedownError, TakedownRequest, run_takedown

runner = CliRunner()
DELTA_URL = "https://b.example.net/delta.wav"  # policy-held segments only
ECHO_DOMAIN = "c.example.com"  # kept segments only, unique audio


def _copy(licensed_dataset, tmp_path: Path) -> tuple[Path, Path]:
    """The dataset and its dedup index copied; the manifest points at the copied index."""
    root, index = tmp_path / "dataset", tmp_path / "dedup-index"
    shutil.copytree(licensed_dataset.root, root)
    shutil.copytree(licensed_dataset.dedup_index, index)
    manifest = json.loads((root / layout.MANIFEST_FILE).read_text())
    manifest["config"]["dedup"]["index"] = str(index)
    (root / layout.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    keys = sorted(pq.read_table(root / layout.INDEX_FILE)[schema.KEY].to_pylist())
    tokens = pa.table({schema.KEY: keys, "tokens": [[i] for i in range(len(keys))]})
    labels = pa.table({schema.KEY: keys[::2], "label": ["x"] * len(keys[::2])})
    for directory, table in (("tokens/semantic@1", tokens), ("labels/round-001", labels)):
        (root / directory).mkdir(parents=True)
        pq.write_table(table, root / directory / "part-000000.parquet")
    return root, index


def _snapshot(*dirs: Path) -> dict[str, bytes]:
    return {f"{d.name}/{p.relative_to(d)}": p.read_bytes() for d in dirs for p in sorted(d.rglob("*")) if p.is_file()}


def _rows(root: Path, source_match) -> list[dict]:
    rows = []
    for name in (layout.INDEX_FILE, layout.REJECTS_FILE):
        rows += [r for r in pq.read_table(root / name).to_pylist() if source_match(r)]
    return rows


def _strings(path: str, data: bytes) -> str:
    """Everything a file says, parsed: parquet cells, tar member names + JSON, gunzipped text, or the
    raw text (a key inside compressed bytes need not appear in them literally)."""
    if path.endswith(".gz"):
        return gzip.decompress(data).decode("utf-8", "replace")
    if path.endswith(".parquet"):
        return json.dumps(pq.read_table(io.BytesIO(data)).to_pylist(), default=str)
    if path.endswith(".tar"):
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return " ".join(m.name + (tar.extractfile(m).read().decode() if m.name.endswith(".json") else "")
                            for m in tar.getmembers())
    return data.decode("utf-8", "replace")


def _removed_audio(root: Path, rows: list[dict]) -> list[bytes]:
    """Byte patterns of the removed audio: a FLAC frame run and 0.25 s of its int16 PCM."""
    patterns = []
    for row in rows:
        if not row.get(schema.SHARD):
            continue
        with tarfile.open(layout.shard_uri(str(root), row[schema.SHARD])) as tar:
            flac = tar.extractfile(f"{row[schema.KEY]}.flac").read()
        pcm = sf.read(io.BytesIO(flac), dtype="int16")[0]
        middle = len(pcm) // 2
        patterns += [flac[len(flac) // 2: len(flac) // 2 + 256], pcm[middle: middle + 4000].tobytes()]
    return patterns


def _invoke(*args: str) -> dict:
    result = runner.invoke(takedown_cli.app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_takedown_leaves_no_byte_of_removed_audio_or_keys_and_every_other_file_identical(licensed_dataset, tmp_path):
    root, index = _copy(licensed_dataset, tmp_path)
    delta = lambda r: r[schema.SOURCE_URI].endswith("/delta.wav")  # noqa: E731
    echo = lambda r: r[schema.SOURCE_URI].endswith("/echo.wav")  # noqa: E731
    removed = _rows(root, lambda r: delta(r) or echo(r))
    keys = {r[schema.KEY] for r in removed if r[schema.KEY]}
    sources = {r[schema.SOURCE_ID] for r in removed}
    assert len(keys) == 4 and sum(bool(r.get(schema.SHARD)) for r in removed) == 4
    audio = _removed_audio(root, removed)
    before = _snapshot(root, index)
    # which files may change: those naming a removed key or source, their parts' markers, the manifest
    touched = {p for p, data in before.items() if any(s in _strings(p, data) for s in keys | sources)}
    parts = {p.rsplit("/", 1)[0] for p in touched if "/_parts/" in p}
    allowed = touched | {f"{p}/{layout.DONE_MARKER}" for p in parts} | {f"dataset/{layout.MANIFEST_FILE}"}

    first = _invoke(str(root), "--source", DELTA_URL, "--by", "legal@example.org", "--note", "T-1")
    second = _invoke(str(root), "--domain", ECHO_DOMAIN)
    assert (first["sources"], first["segments"], first["held_segments"]) == (1, 0, 2)
    assert (second["sources"], second["segments"], second["held_segments"]) == (1, 2, 0)

    after = _snapshot(root, index)
    for path, data in after.items():
        assert not any(k.encode() in data for k in keys), path
        assert not any(pattern in data for pattern in audio), path
        assert not any(k in _strings(path, data) for k in keys | sources), path
    for path, data in before.items():
        if path not in allowed:
            assert after.get(path) == data, f"{path} changed"
    assert f"dataset/{layout.HELD_DIR}/held-000001-000.tar" not in after  # delta's held tar emptied
    manifest = json.loads(after[f"dataset/{layout.MANIFEST_FILE}"])
    records = manifest["takedowns"]
    assert [r["criteria"] for r in records] == [{"source": DELTA_URL}, {"domain": ECHO_DOMAIN}]
    assert records[0]["requested_by"] == "legal@example.org" and records[0]["note"] == "T-1"
    assert manifest["counts"]["segments"] == licensed_dataset.manifest["counts"]["segments"] - 2
    assert manifest["accounting"]["ok"] and manifest["counts"]["inputs"] == 4
    assert {s["name"] for s in manifest["held_shards"]} == {p.name for p in (root / layout.HELD_DIR).iterdir()}
    # what is left still reads: every remaining index row decodes from its (repacked) shard
    left = list(SegmentDataset(str(root), LoaderOptions(shuffle=False)))
    assert len(left) == manifest["counts"]["segments"]


def test_takedown_that_matches_nothing_or_is_a_dry_run_changes_nothing(licensed_dataset, tmp_path):
    root, index = _copy(licensed_dataset, tmp_path)
    before = _snapshot(root, index)
    result = runner.invoke(takedown_cli.app, [str(root), "--license", "GPL-3.0"])
    assert result.exit_code == 0 and "nothing changed" in result.output
    dry = _invoke(str(root), "--license", "cc0-1.0", "--dry-run")
    kept_cc0 = [r for r in pq.read_table(root / layout.INDEX_FILE).to_pylist()
                if (r[schema.PROV_LICENSE] or "").lower() == "cc0-1.0"]
    assert kept_cc0, "the fixture keeps cc0 audio"
    # sources: charlie, foxtrot (kept) and delta (held by policy only)
    assert dry["dry_run"] and dry["sources"] == 3 and dry["segments"] == len(kept_cc0)
    assert dry["seconds"] == pytest.approx(sum(r[schema.AUDIO_DURATION_S] for r in kept_cc0))
    assert _snapshot(root, index) == before
    result = runner.invoke(takedown_cli.app, [str(root)])
    assert result.exit_code == 2 and "--source" in result.output


def test_takedown_is_idempotent_and_resumes_after_an_interruption(licensed_dataset, tmp_path, monkeypatch):
    request = TakedownRequest(domain="a.example.org", requested_by="t")
    clean_root, clean_index = _copy(licensed_dataset, tmp_path / "one-shot")
    run_takedown(str(clean_root), request, now_unix=1.0)
    root, index = _copy(licensed_dataset, tmp_path / "interrupted")
    calls = {"n": 0}
    real = takedown_files.patch_table

    def crash_on_fourth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk gone")
        return real(*args, **kwargs)

    monkeypatch.setattr(takedown_files, "patch_table", crash_on_fourth)
    with pytest.raises(OSError):
        run_takedown(str(root), request, now_unix=1.0)
    assert (root / "_takedown" / "pending.json").exists()
    with pytest.raises(TakedownError, match="half done"):  # another takedown must wait for this one
        run_takedown(str(root), TakedownRequest(license="CC0-1.0"))
    monkeypatch.setattr(takedown_files, "patch_table", real)
    resumed = run_takedown(str(root), request, now_unix=1.0)
    assert resumed.resumed and resumed.sources == 2
    assert not (root / "_takedown").exists() or not any((root / "_takedown").iterdir())

    def strip(snapshot: dict[str, bytes]) -> dict[str, object]:
        """Paths relative to each copy; the manifests differ only in the copy's dedup.index path."""
        out: dict[str, object] = {k.split("/", 1)[1]: v for k, v in snapshot.items()}
        manifest = json.loads(out[layout.MANIFEST_FILE])
        manifest["config"]["dedup"].pop("index")
        out[layout.MANIFEST_FILE] = manifest
        return out

    assert strip(_snapshot(root, index)) == strip(_snapshot(clean_root, clean_index))
    again = run_takedown(str(root), request, now_unix=2.0)
    assert not again.matched
    assert strip(_snapshot(root, index)) == strip(_snapshot(clean_root, clean_index))


def test_takedown_of_a_domain_unlinks_dedup_duplicates_and_side_tables(licensed_dataset, tmp_path):
    root, _ = _copy(licensed_dataset, tmp_path)
    removed = _rows(root, lambda r: "a.example.org" in (r[schema.METADATA_JSON] or ""))
    keys = {r[schema.KEY] for r in removed}
    tokens_before = pq.read_table(root / "tokens/semantic@1/part-000000.parquet").to_pylist()
    result = _invoke(str(root), "--domain", "example.org")  # subdomain a.example.org matches
    assert result["sources"] == 2  # alpha and bravo; b.example.net and c.example.com stay
    rejects = pq.read_table(root / layout.REJECTS_FILE).to_pylist()
    assert not keys & {r[schema.DUPLICATE_OF] for r in rejects}
    dedup = pq.read_table(root / layout.DEDUP_FILE).to_pylist()
    assert not keys & ({r[schema.KEY] for r in dedup} | {r["cluster_id"] for r in dedup})
    tokens = pq.read_table(root / "tokens/semantic@1/part-000000.parquet").to_pylist()
    assert tokens == [r for r in tokens_before if r[schema.KEY] not in keys]
    index = pq.read_table(root / layout.INDEX_FILE)
    for row in index.to_pylist():  # offsets of repacked shards were updated
        with tarfile.open(layout.shard_uri(str(root), row[schema.SHARD])) as tar:
            member = tar.getmember(f"{row[schema.KEY]}.flac")
            assert (member.offset_data, member.size) == (row[schema.TAR_OFFSET], row[schema.FLAC_BYTES])
    assert np.isclose(json.loads((root / layout.MANIFEST_FILE).read_text())["hours_out"] * 3600,
                      sum(index[schema.AUDIO_DURATION_S].to_pylist()))


def test_takedown_re_exports_recorded_exports_and_names_those_it_cannot_reach(licensed_dataset, tmp_path):
    from lhotse import CutSet

    from audiomill.cli import export as export_cli

    root, _ = _copy(licensed_dataset, tmp_path)
    lhotse_out, hf_out = tmp_path / "lhotse", tmp_path / "hf"
    for args in (["lhotse", str(root), str(lhotse_out)], ["hf", str(root), str(hf_out)]):
        assert runner.invoke(export_cli.app, args).exit_code == 0
    echo = lambda r: r[schema.SOURCE_URI].endswith("/echo.wav")  # noqa: E731
    removed = [r for r in _rows(root, echo) if r[schema.KEY]]
    keys = {r[schema.KEY] for r in removed}
    audio = _removed_audio(root, removed)
    exported = _snapshot(lhotse_out, hf_out)
    assert keys and any(any(k in _strings(p, data) for k in keys) for p, data in exported.items())
    records = json.loads((root / layout.EXPORTS_FILE).read_text())
    records["exports"].append({**records["exports"][0], "host": "elsewhere", "out": "/data/lhotse"})
    (root / layout.EXPORTS_FILE).write_text(json.dumps(records))

    dry = _invoke(str(root), "--domain", ECHO_DOMAIN, "--dry-run")
    assert dry["exports_refreshed"] == [str(lhotse_out), str(hf_out)] and _snapshot(lhotse_out, hf_out) == exported
    result = _invoke(str(root), "--domain", ECHO_DOMAIN)
    assert result["exports_refreshed"] == [str(lhotse_out), str(hf_out)]
    assert result["exports_unreachable"] == ["elsewhere:/data/lhotse"]
    for path, data in _snapshot(lhotse_out, hf_out).items():  # neither in the bytes nor in what they say
        assert not any(k.encode() in data or k in _strings(path, data) for k in keys), path
        assert not any(pattern in data for pattern in audio), path
    left = set(pq.read_table(root / layout.INDEX_FILE)[schema.KEY].to_pylist())
    assert {c.id for c in CutSet.from_file(lhotse_out / "cuts.jsonl.gz")} == left
    hf_rows = sum(pq.read_metadata(p).num_rows for p in (hf_out / "data").glob("*.parquet"))
    assert hf_rows == len(left)
    assert not [p for p in tmp_path.iterdir() if ".takedown-" in p.name]  # no staging copies left
