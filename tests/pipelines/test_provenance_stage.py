"""ProvenanceStage: prov_* columns from manifest rows, crawl records and per-input defaults;
the ingest.licenses allow-list rejects others with reason license_not_allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from audiomill import schema
from audiomill.config import IngestConfig, ProvenanceConfig, ProvenanceDefault
from audiomill import ingest
from audiomill.pipelines.provenance import ProvenanceStage
from audiomill.schema import RejectReason


def _sources(tmp_path: Path) -> pa.Table:
    for name in ("a.wav", "b.wav", "c.wav", "bought/d.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"RIFF0000WAVE")
    rows = [{"path": "a.wav", "license": "CC-BY-4.0", "source_url": "https://Cdn.Example.org/x/a.wav",
             "fetched_unix": 1_700_000_000.5},
            {"path": "b.wav", "license": "Proprietary", "url": "http://other.net/b",
             "fetched_at": "2026-11-30T10:00:00Z"},
            {"path": "c.wav"},
            {"path": "bought/d.wav", "fetched_at": "not a date"}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return next(ingest.iter_parts(ingest.iter_sources([str(manifest)], IngestConfig()), 10))


def _by_name(table: pa.Table) -> dict[str, dict]:
    return {Path(r[schema.SOURCE_URI]).name: r for r in table.to_pylist()}


def test_provenance_columns_come_from_metadata_then_defaults(tmp_path):
    defaults = ProvenanceConfig(defaults=[
        ProvenanceDefault(prefix=str(tmp_path), license="CC0-1.0"),
        ProvenanceDefault(prefix=str(tmp_path / "bought"), license="bought-2026", source_url="https://seller.example/x",
                          fetched_unix=42.0)])
    out = _by_name(ProvenanceStage(IngestConfig(), defaults)(_sources(tmp_path)))
    assert {k: out["a.wav"][k] for k in schema.PROVENANCE_COLUMNS} == {
        schema.PROV_LICENSE: "CC-BY-4.0", schema.PROV_SOURCE_URL: "https://Cdn.Example.org/x/a.wav",
        schema.PROV_DOMAIN: "cdn.example.org", schema.PROV_FETCHED_UNIX: 1_700_000_000.5}
    assert out["b.wav"][schema.PROV_DOMAIN] == "other.net"
    assert out["b.wav"][schema.PROV_FETCHED_UNIX] == 1_796_032_800.0  # 2026-11-30T10:00Z
    assert out["c.wav"][schema.PROV_LICENSE] == "CC0-1.0"  # the input's default
    assert out["c.wav"][schema.PROV_SOURCE_URL] is None and out["c.wav"][schema.PROV_DOMAIN] is None
    assert (out["d.wav"][schema.PROV_LICENSE], out["d.wav"][schema.PROV_DOMAIN],
            out["d.wav"][schema.PROV_FETCHED_UNIX]) == ("bought-2026", "seller.example", 42.0)  # longest prefix
    assert all(r.get(schema.REJECT_REASON) is None for r in out.values())


def test_license_allow_list_rejects_others_case_insensitively(tmp_path):
    stage = ProvenanceStage(IngestConfig(licenses=["cc-by-4.0", "unknown"]), ProvenanceConfig())
    out = _by_name(stage(_sources(tmp_path)))
    reasons = {name: row.get(schema.REJECT_REASON) for name, row in out.items()}
    assert reasons == {"a.wav": None, "b.wav": RejectReason.LICENSE_NOT_ALLOWED.value,
                       "c.wav": None, "d.wav": None}  # c and d have no license: "unknown" is allowed
    assert out["b.wav"][schema.REJECT_STAGE] == schema.StageName.INGEST.value
    assert "'Proprietary'" in out["b.wav"][schema.REJECT_DETAIL]
    strict = _by_name(ProvenanceStage(IngestConfig(licenses=["CC-BY-4.0"]), ProvenanceConfig())(_sources(tmp_path)))
    assert [n for n, r in strict.items() if r.get(schema.REJECT_REASON)] == ["b.wav", "c.wav", "d.wav"]
