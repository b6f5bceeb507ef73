"""A job's --out: empty results are datasets, bad policies fail up front, other jobs' datasets are
refused (or replaced with --overwrite), a dry run writes nothing, a file is not a directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from audiomill import layout
from audiomill.cli.app import app
from audiomill.pipelines.clean import clean_stages
from audiomill.pipelines.contract import ContractError, check_order
from audiomill.config import load_config
from audiomill.schema import SAMPLE_RATE
from audiomill.testing.signals import sine, write_audio

runner = CliRunner()


@pytest.fixture
def write_tone(tmp_path: Path):
    def write(name: str, seconds: float = 0.5) -> Path:
        return write_audio(tmp_path / name, sine(440.0, seconds, SAMPLE_RATE), SAMPLE_RATE)

    return write


def _clean(*args: str):
    return runner.invoke(app, ["clean", *args, "--runner", "local"])


def test_an_empty_result_is_a_valid_dataset(tmp_path: Path):
    empty, broken = tmp_path / "empty", tmp_path / "broken"
    empty.mkdir()
    broken.mkdir()
    (broken / "a.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    (broken / "b.flac").write_bytes(b"not audio at all")
    for inputs, expected in ((empty, 0), (broken, 2)):
        out = tmp_path / f"ds-{inputs.name}"
        result = _clean(str(inputs), "--out", str(out))
        assert result.exit_code == 0, result.output
        manifest = json.loads((out / layout.MANIFEST_FILE).read_text())
        assert manifest["counts"]["inputs"] == expected == manifest["counts"]["rejected_sources"]
        assert manifest["accounting"]["ok"] and manifest["counts"]["segments"] == 0
        assert pq.read_table(out / layout.REJECTS_FILE).num_rows == expected
        assert "no segment was kept" in " ".join(result.output.split())


def test_a_policy_naming_an_unknown_column_fails_up_front(tmp_path: Path, write_tone):
    tone = write_tone("tone.wav")
    policy = tmp_path / "typo.yaml"
    policy.write_text("rules: {q_snrdb: {min: 5}}\n")
    for extra in (["--dry-run"], []):
        result = _clean(str(tone), "--out", str(tmp_path / "ds"), "--policy", str(policy), *extra)
        assert result.exit_code == 2, result.output
        assert "q_snrdb" in result.output and "no stage" in " ".join(result.output.split())
    assert not (tmp_path / "ds").exists()


def test_dry_run_writes_nothing(tmp_path: Path, write_tone):
    result = _clean(str(write_tone("tone.wav")), "--out", str(tmp_path / "ds"), "--dry-run")
    assert result.exit_code == 0 and "1 sources in 1 parts" in result.output
    assert not (tmp_path / "ds").exists()


def test_out_that_is_a_file_is_a_usage_error(tmp_path: Path, write_tone):
    target = tmp_path / "file.txt"
    target.write_text("x")
    result = _clean(str(write_tone("tone.wav")), "--out", str(target))
    assert result.exit_code == 2 and "is a file" in " ".join(result.output.split())


def test_another_jobs_dataset_is_refused_then_replaced_with_overwrite(tmp_path: Path, write_tone):
    a, b, out = write_tone("a.wav"), write_tone("b.wav", seconds=0.7), tmp_path / "ds"
    assert _clean(str(a), "--out", str(out)).exit_code == 0
    assert _clean(str(a), "--out", str(out)).exit_code == 0  # the same job resumes
    refused = _clean(str(b), "--out", str(out))
    assert refused.exit_code == 2 and "other inputs" in " ".join(refused.output.split())
    assert json.loads((out / layout.MANIFEST_FILE).read_text())["config"]["inputs"] == [str(a)]
    replaced = _clean(str(b), "--out", str(out), "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((out / layout.MANIFEST_FILE).read_text())["config"]["inputs"] == [str(b)]
    assert [p.name for p in (out / layout.PARTS_DIR).glob("part-*")] == ["part-000000"]


def test_the_clean_stage_order_satisfies_every_declared_column(tmp_path: Path):
    for overrides in ([], ["diarize.enabled=true"], ["policy=null", "dedup.enabled=false"]):
        cfg = load_config(overrides=[f"output={tmp_path}", *overrides])
        stages = clean_stages(cfg, "0" * 16, None)
        columns = check_order(stages)
        assert {"q_snr_db", "key", "vad_starts_s"} <= columns
    names = [s.name for s in stages]
    vad, segment = names.index("vad"), names.index("segment")
    swapped = list(stages)
    swapped[vad], swapped[segment] = stages[segment], stages[vad]  # segment before vad
    try:
        check_order(swapped)
    except ContractError as err:
        assert "segment" in str(err) and "vad_starts_s" in str(err)
    else:
        raise AssertionError("a stage list with segment before vad passed the contract check")


def test_a_second_run_on_a_locked_output_refuses_and_names_the_holder(tmp_path: Path, write_tone):
    import subprocess
    import sys

    from audiomill.jobs.lock import output_lock

    out = tmp_path / "ds"
    with output_lock(str(out), command="audiomill clean (the first run)"):
        second = subprocess.run([sys.executable, "-m", "audiomill", "clean", str(write_tone("a.wav")), "--out",
                                 str(out), "--runner", "local"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 2, second.stderr
    said = " ".join(second.stderr.split())
    assert "being written by another run" in said and "the first run" in said and str(os.getpid()) in said
    assert not (out / layout.MANIFEST_FILE).exists()
