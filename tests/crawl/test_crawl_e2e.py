"""`audiomill crawl` as a user runs it: URL list -> local site on 127.0.0.1 -> raw storage -> clean
job -> dataset whose index carries licenses and whose rejects carry every failed URL; then a
rerun that fetches nothing again and resumes every part."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from audiomill.testing.crawl_site import EXPECTED, HEADER_LICENSE, LISTED, PAGE_LICENSE, SECRET

from audiomill import layout, schema

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "audiomill"]
CRAWL_CONFIG = {"crawl": {"allowed_domains": ["127.0.0.1"], "per_host_rate": 20.0, "timeout_s": 1.0,
                          "retries": 2, "backoff_s": 0.05, "seed": 7, "max_bytes": 1024 * 1024},
                "ingest": {"part_size": 4}}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=240)


def _write_inputs(site, tmp_path: Path) -> tuple[Path, Path]:
    urls_file = tmp_path / "urls.jsonl"
    lines = [{"url": site.url(p), "source": "test-site"} | ({"license": "CC0-1.0"} if p == "/audio/one.wav" else {})
             for p in LISTED]
    urls_file.write_text("".join(json.dumps(line) + "\n" for line in lines) + "# a comment\nnot json\n")
    config = tmp_path / "crawl.yaml"
    config.write_text(yaml.safe_dump(CRAWL_CONFIG))
    return urls_file, config


def test_crawl_to_dataset_then_rerun_fetches_nothing_again(site, tmp_path):
    urls_file, config = _write_inputs(site, tmp_path)
    out = tmp_path / "dataset"
    args = ["-v", "crawl", str(urls_file), "--out", str(out), "--config", str(config), "--runner", "local"]
    first = _run(*args, "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    result = json.loads(first.stdout)
    dataset, report = result["dataset"], result["crawl"]
    kept_paths = [p.split("?")[0] for p, v in EXPECTED.items() if v == "kept"]
    failed = {p.split("?")[0]: v for p, v in EXPECTED.items() if v not in (None, "kept")}
    rows = len(kept_paths) + len(failed) + 1  # + the list's line that is not JSON
    assert report["fetched"] == len(kept_paths) and report["rows"] == rows
    assert dataset["counts"]["inputs"] == rows and dataset["accounting"]["ok"]
    assert dataset["counts"]["kept_sources"] == len(kept_paths)

    rejects = pq.read_table(out / layout.REJECTS_FILE).to_pylist()
    crawl_rejects = {json.loads(r[schema.METADATA_JSON] or "{}").get("source_url", r[schema.SOURCE_URI]):
                     r[schema.REJECT_REASON] for r in rejects if r[schema.REJECT_STAGE] == "crawl"}
    assert {url.removeprefix(site.url("")): reason for url, reason in crawl_rejects.items()} == \
        failed | {f"urls-file#line{len(LISTED) + 2}": "bad_manifest_row"}
    assert len(rejects) == len(crawl_rejects)  # every fetched file was real speech

    index = pq.read_table(out / layout.INDEX_FILE).to_pylist()
    licenses = {}
    for row in index:
        metadata = json.loads(row[schema.METADATA_JSON])
        assert metadata["source"] == "test-site"
        licenses[metadata["source_url"].removeprefix(site.url(""))] = metadata.get("license")
    assert set(licenses) == set(kept_paths)
    assert licenses["/audio/one.wav"] == "CC0-1.0"
    assert licenses["/audio/two.flac"] == HEADER_LICENSE
    assert licenses["/audio/listed-1.wav"] == licenses["/audio/listed-2.flac"] == PAGE_LICENSE

    hits_before = {p: len(site.hits(p)) for p in kept_paths}
    second = _run(*args)  # no --json: the table summary path
    assert second.returncode == 0, second.stderr[-3000:]
    assert "accounting" in second.stdout and f"0 fetched, {len(kept_paths)} already fetched" in second.stdout
    assert {p: len(site.hits(p)) for p in kept_paths} == hits_before
    rerun_report = json.loads((out / "_crawl" / "report.json").read_text())
    assert rerun_report["cached"] == len(kept_paths) and rerun_report["fetched"] == 0
    manifest = json.loads((out / layout.MANIFEST_FILE).read_text())
    assert manifest["counts"]["parts_resumed"] == manifest["counts"]["parts"]
    assert manifest["accounting"]["ok"]

    for text in (first.stdout, first.stderr, second.stdout, second.stderr):
        assert SECRET not in text
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != urls_file:
            assert SECRET.encode() not in path.read_bytes(), path


def test_crawl_refuses_to_start_without_an_allow_list(site, tmp_path):
    from typer.testing import CliRunner

    from audiomill.cli.app import app

    urls_file, _ = _write_inputs(site, tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["crawl", str(urls_file), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "crawl.allowed_domains" in result.output
    missing = runner.invoke(app, ["crawl", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "out"),
                                  "--allow-any-domain"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert not site.requests and not (tmp_path / "out").exists()
