"""The CLI as a user runs it: exit codes, summaries, and resume after the process is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from audiomill import layout

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "audiomill"]


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def _shard_sums(manifest: dict) -> dict[str, str]:
    return {s["name"]: s["sha256"] for s in manifest["shards"]}


def test_help_explains_every_command():
    result = _run("--help")
    assert result.returncode == 0
    for command in ("clean", "inspect", "demo"):
        assert command in result.stdout
    clean_help = _run("clean", "--help")
    assert "Example" in clean_help.stdout and "--set" in clean_help.stdout


def test_bad_config_and_missing_input_exit_2(tmp_path, demo_corpus):
    bad = _run("clean", str(demo_corpus.root), "--out", str(tmp_path / "o"), "--set", "vad.threshold=3")
    assert bad.returncode == 2 and "vad.threshold" in bad.stderr
    missing = _run("clean", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    unknown = _run("clean", str(demo_corpus.root), "--out", str(tmp_path / "o"), "--set", "vad.bogus=1")
    assert unknown.returncode == 2 and "vad.bogus" in unknown.stderr
    assert not (tmp_path / "o" / layout.MANIFEST_FILE).exists()


def test_dry_run_lists_parts_without_writing_shards(tmp_path, demo_corpus):
    result = _run("clean", str(demo_corpus.root), "--out", str(tmp_path / "o"), "--dry-run", "--json",
                  "--set", "ingest.part_size=5")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["sources"] == len(demo_corpus.files)
    assert plan["parts"] == -(-len(demo_corpus.files) // 5)
    assert not (tmp_path / "o" / layout.SHARDS_DIR).exists()


def test_killed_job_resumes_to_identical_output(tmp_path, demo_corpus):
    args = ["clean", str(demo_corpus.root), "--runner", "local", "--json", "--set", "ingest.part_size=1"]
    reference = _run(*args, "--out", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "interrupted"
    process = subprocess.Popen([*CLI, *args, "--out", str(out)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob(f"{layout.PARTS_DIR}/*/{layout.DONE_MARKER}"))) < 3:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(list(out.glob(f"{layout.PARTS_DIR}/*/{layout.DONE_MARKER}")))
    assert 3 <= done_before < len(demo_corpus.files), "kill came too late to test resume"
    assert not (out / layout.MANIFEST_FILE).exists()
    resumed = _run(*args, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads(resumed.stdout)
    expected = json.loads(reference.stdout)
    assert manifest["counts"]["parts_resumed"] >= done_before
    assert _shard_sums(manifest) == _shard_sums(expected)
    for name in (layout.INDEX_FILE, layout.REJECTS_FILE):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()
    assert sorted(p.name for p in (out / layout.SHARDS_DIR).iterdir()) == sorted(_shard_sums(expected))


def test_inspect_prints_summary_matching_manifest(tmp_path, demo_dataset):
    out, _ = demo_dataset
    result = _run("inspect", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    manifest = json.loads((out / layout.MANIFEST_FILE).read_text())
    assert summary["index_rows"] == manifest["counts"]["segments"]
    assert sum(b["segments"] for b in summary["duration_histogram"]) == summary["index_rows"]
    assert sum(r["count"] for r in summary["rejects"]) == pq.read_metadata(out / layout.REJECTS_FILE).num_rows
    text = _run("inspect", str(out))
    assert "top reject reasons" in text.stdout and "no_speech" in text.stdout
    assert _run("inspect", str(tmp_path / "nothing")).returncode == 2
