"""Hours by license and domain on real datasets, and `clean` with an ingest.licenses allow-list."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from audiomill import layout, schema
from audiomill.jobs.provenance import licensing_report
from audiomill.provenance import host_of
from audiomill.testing.licensed import SOURCES, clean_dataset


def _truth(index_rows: list[dict]) -> tuple[dict, dict]:
    """Hours per license and domain from the corpus's own table of sources (not from the dataset)."""
    licenses = {name: (lic, host_of(url)) for name, _, _, lic, url, _ in SOURCES}
    by_license, by_domain = defaultdict(float), defaultdict(float)
    for row in index_rows:
        license_, domain = licenses[Path(row[schema.SOURCE_URI]).name]
        by_license[license_] += row[schema.AUDIO_DURATION_S] / 3600
        by_domain[domain] += row[schema.AUDIO_DURATION_S] / 3600
    return by_license, by_domain


def test_hours_by_license_and_domain_match_the_corpus(licensed_dataset, tmp_path):
    rows = pq.read_table(licensed_dataset.root / layout.INDEX_FILE).to_pylist()
    assert all(r[schema.PROV_LICENSE] and r[schema.PROV_FETCHED_UNIX] for r in rows)
    by_license, by_domain = _truth(rows)
    report = licensing_report(str(licensed_dataset.root)).as_dict()
    assert {k: pytest.approx(v["hours"], abs=1e-6) for k, v in report["by_license"].items()} == by_license
    assert {k: pytest.approx(v["hours"], abs=1e-6) for k, v in report["by_domain"].items()} == by_domain
    assert report["by_license"]["proprietary"]["sources"] == 1 and report["missing_license_segments"] == 0
    # a dataset from before the provenance stage (license only in metadata_json) reports the same
    old = tmp_path / "old"
    shutil.copytree(licensed_dataset.root, old)
    index = pq.read_table(old / layout.INDEX_FILE)
    pq.write_table(index.drop_columns(list(schema.PROVENANCE_COLUMNS)), old / layout.INDEX_FILE)
    assert licensing_report(str(old)).as_dict() == report


def test_segment_json_in_shards_carries_provenance(licensed_dataset):
    row = pq.read_table(licensed_dataset.root / layout.INDEX_FILE).to_pylist()[0]
    with tarfile.open(layout.shard_uri(str(licensed_dataset.root), row[schema.SHARD])) as tar:
        meta = json.load(io.BytesIO(tar.extractfile(f"{row[schema.KEY]}.json").read()))
    assert meta[schema.PROV_LICENSE] == row[schema.PROV_LICENSE]
    assert meta[schema.PROV_SOURCE_URL].startswith("https://") and meta[schema.PROV_DOMAIN]


@pytest.mark.slow
def test_clean_with_a_license_allow_list_rejects_the_rest(licensed_dataset, tmp_path):
    out = tmp_path / "allowed"
    manifest = clean_dataset([str(licensed_dataset.corpus.manifest)], out, "ingest.licenses=[cc0-1.0, CC-BY-4.0]")
    assert manifest["rejects_by_reason"]["license_not_allowed"] == 1 and manifest["accounting"]["ok"]
    rejects = pq.read_table(out / layout.REJECTS_FILE).to_pylist()
    refused = [r for r in rejects if r[schema.REJECT_REASON] == "license_not_allowed"]
    assert [Path(r[schema.SOURCE_URI]).name for r in refused] == ["echo.wav"]
    report = licensing_report(str(out)).as_dict()
    assert set(report["by_license"]) == {"CC0-1.0", "CC-BY-4.0"}
    assert report["rejected_by_license"] == {"proprietary": 1}


def test_licensing_tables_render_every_license_and_domain(licensed_dataset):
    from rich.console import Console

    from audiomill.cli.provenance import print_licensing

    report = licensing_report(str(licensed_dataset.root)).as_dict()
    console = Console(record=True, width=120)
    print_licensing(report | {"rejected_by_license": {"proprietary": 1}}, console)
    text = console.export_text()
    for name in ("CC-BY-4.0", "CC0-1.0", "proprietary", "a.example.org", "b.example.net", "c.example.com"):
        assert name in text
    assert f"{report['by_license']['CC0-1.0']['hours']:.3f}" in text
    assert "rejected by ingest.licenses: proprietary: 1" in text
