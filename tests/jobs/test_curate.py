"""`audiomill clean` with a filter policy, then `audiomill curate` round trips on the real dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from audiomill import layout, schema
from audiomill.audio import decode_flac
from audiomill.curation.policy import load_policy
from audiomill.jobs.curate import curate_dataset
from audiomill.schema import SAMPLE_RATE, RejectReason
from audiomill.testing import signals

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "audiomill"]
LOOSE = "name: loose\nrules:\n  q_snr_db: {min: -100}\n"
STRICT = "name: strict\nrules:\n  q_snr_db: {min: 20}\n  q_bandwidth_hz: {min: 6000}\n"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Clean, noisy (~3 dB SNR), clipped and narrowband espeak speech, plus one broken file."""
    root = tmp_path_factory.mktemp("curate") / "corpus"
    sentences = [("The museum opens at nine in the morning.", "en"), ("Turn left at the second light.", "en+f3"),
                 ("My brother plays the violin after dinner.", "en-us"), ("Heute ist das Wetter sonnig.", "de")]
    speech = []
    for text, voice in sentences:
        audio, sr = signals.espeak(text, voice)
        audio = signals.resample(audio, sr, SAMPLE_RATE)
        speech.append(np.concatenate([signals.silence(0.5, SAMPLE_RATE), audio, signals.silence(0.5, SAMPLE_RATE)]))
    level = 10 * np.log10(np.mean(speech[1] ** 2))
    noise = signals.white_noise(len(speech[1]) / SAMPLE_RATE, SAMPLE_RATE, level - 3.0, seed=5)[: len(speech[1])]
    files = {"clean.wav": speech[0], "noisy.wav": speech[1] + noise,
             "clipped.wav": np.clip(speech[2] * 30, -1.0, 1.0),
             "narrowband.wav": signals.resample(signals.resample(speech[3], SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)}
    for name, audio in files.items():
        signals.write_audio(root / name, audio.astype(np.float32), SAMPLE_RATE)
    (root / "broken.wav").write_bytes(b"RIFF")
    return root


@pytest.fixture(scope="module")
def dataset(corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("curate") / "dataset"
    result = _run("clean", str(corpus), "--out", str(out), "--runner", "local", "--json",
                  "--set", "ingest.part_size=2")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def _tables(root: Path):
    return pq.read_table(root / layout.INDEX_FILE), pq.read_table(root / layout.REJECTS_FILE)


def _by_file(table) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        rows.setdefault(Path(row[schema.SOURCE_URI]).name, []).append(row)
    return rows


def _policy(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def _read_flac(root: Path, row: dict) -> np.ndarray:
    with open(layout.shard_uri(str(root), row[schema.SHARD]), "rb") as handle:
        handle.seek(row[schema.TAR_OFFSET])
        return decode_flac(handle.read(row[schema.FLAC_BYTES]))


def test_default_policy_rejects_noisy_and_clipped_segments_with_details(dataset):
    out, manifest = dataset
    index, rejects = _tables(out)
    kept, rejected = _by_file(index), _by_file(rejects)
    assert set(kept) == {"clean.wav", "narrowband.wav"}
    for name, rule in (("noisy.wav", "q_snr_db="), ("clipped.wav", "q_clipping_ratio=")):
        rows = rejected[name]
        assert all(r[schema.REJECT_REASON] == RejectReason.POLICY.value and r[schema.REJECT_STAGE] == "policy"
                   for r in rows)
        assert all(r[schema.KEY] and rule in r[schema.REJECT_DETAIL] for r in rows), rows
        assert all(r[schema.Q_SNR_DB] is not None and r[schema.AUDIO_DURATION_S] > 0 for r in rows)
        for row in rows:  # held audio is where the reject row says
            assert _read_flac(out, row).size == pytest.approx(row[schema.AUDIO_DURATION_S] * SAMPLE_RATE, abs=1)
    assert rejected["broken.wav"][0][schema.SHARD] is None
    counts = manifest["counts"]
    assert (counts["inputs"], counts["kept_sources"], counts["rejected_sources"]) == (5, 2, 3)
    assert manifest["accounting"]["ok"]
    assert manifest["rejects_by_reason"][RejectReason.POLICY.value] == len(rejected["noisy.wav"]) + len(
        rejected["clipped.wav"])
    assert {Path(p).name for p in (out / layout.SHARDS_DIR).iterdir()} == {s["name"] for s in manifest["shards"]}
    assert {Path(p).name for p in (out / layout.HELD_DIR).iterdir()} == {s["name"] for s in manifest["held_shards"]}
    report = manifest["policy_report"]
    assert manifest["policy"]["source"] == "default"
    assert report["kept_hours"] + report["rejected_hours"] == pytest.approx(report["total_hours"])
    assert report["kept_hours"] == pytest.approx(manifest["hours_out"])


def test_kept_segments_carry_metrics_in_index_and_json(dataset):
    out, _ = dataset
    index, _ = _tables(out)
    row = index.to_pylist()[0]
    for name in schema.QUALITY_COLUMNS:
        assert isinstance(row[name], float), name
    import tarfile

    with tarfile.open(out / layout.SHARDS_DIR / row[schema.SHARD]) as tar:
        meta = json.load(tar.extractfile(f"{row[schema.KEY]}.json"))
    assert meta[schema.Q_SNR_DB] == row[schema.Q_SNR_DB]
    assert meta[schema.Q_BANDWIDTH_HZ] == row[schema.Q_BANDWIDTH_HZ]


def test_curate_stricter_then_looser_then_back(dataset, tmp_path):
    out, manifest = dataset
    index, rejects = _tables(out)
    candidates = index.num_rows + pc.sum(pc.equal(rejects[schema.REJECT_REASON], "policy")).as_py()
    strict = curate_dataset(str(out), _policy(tmp_path, "strict", STRICT), str(tmp_path / "strict")).to_dict()
    strict_index, strict_rejects = _tables(tmp_path / "strict")
    assert 0 < strict_index.num_rows < index.num_rows
    assert "narrowband.wav" not in _by_file(strict_index)
    narrow = _by_file(strict_rejects)["narrowband.wav"]
    assert all("q_bandwidth_hz=" in r[schema.REJECT_DETAIL] and ">max" not in r[schema.REJECT_DETAIL] for r in narrow)
    assert strict["counts"]["segments"] == strict_index.num_rows
    assert strict["accounting"]["ok"] and strict["counts"]["rejected_sources"] == 4

    loose = curate_dataset(str(tmp_path / "strict"), _policy(tmp_path, "loose", LOOSE), str(tmp_path / "loose")).to_dict()
    loose_index, loose_rejects = _tables(tmp_path / "loose")
    assert loose_index.num_rows == candidates  # clean-time policy rejects came back too
    assert set(_by_file(loose_index)) == {"clean.wav", "noisy.wav", "clipped.wav", "narrowband.wav"}
    assert loose_rejects[schema.REJECT_REASON].to_pylist() == [RejectReason.DECODE_ERROR.value]
    assert loose["counts"]["kept_sources"] == 4
    for row in loose_index.to_pylist():  # every index row, from shards/ or held/, points at its audio
        assert _read_flac(tmp_path / "loose", row).size == pytest.approx(row[schema.AUDIO_DURATION_S] * SAMPLE_RATE, abs=1)

    again = curate_dataset(str(tmp_path / "loose"), "default", str(tmp_path / "again")).to_dict()
    again_index = _tables(tmp_path / "again")[0]
    assert again_index.schema.names == index.schema.names
    assert again_index.equals(index)
    assert again["counts"] == manifest["counts"]
    assert again["hours_out"] == pytest.approx(manifest["hours_out"])


def test_report_sums_match_total_hours(dataset, tmp_path):
    out, _ = dataset
    manifest = curate_dataset(str(out), _policy(tmp_path, "strict", STRICT), str(tmp_path / "report")).to_dict()
    report = manifest["policy_report"]
    index, rejects = _tables(out)
    durations = index[schema.AUDIO_DURATION_S].to_pylist() + [
        r[schema.AUDIO_DURATION_S] for r in rejects.to_pylist() if r[schema.REJECT_REASON] == "policy"]
    assert report["total_hours"] == pytest.approx(sum(durations) / 3600)
    assert report["kept_hours"] + report["rejected_hours"] == pytest.approx(report["total_hours"])
    assert report["kept_hours"] == pytest.approx(manifest["hours_out"])
    per_rule = {r["metric"]: r for r in report["rules"]}
    assert sum(r["only_hours"] for r in report["rules"]) <= report["rejected_hours"] + 1e-12
    assert max(r["rejected_hours"] for r in report["rules"]) <= report["rejected_hours"] + 1e-12
    assert per_rule["q_bandwidth_hz"]["rejected_hours"] > 0 and per_rule["q_snr_db"]["rejected_hours"] > 0


def test_curate_cli_prints_json_and_leaves_the_source_untouched(dataset, tmp_path):
    out, _ = dataset
    before = (out / layout.INDEX_FILE).read_bytes()
    result = _run("curate", str(out), "--policy", _policy(tmp_path, "strict", STRICT), "--out",
                  str(tmp_path / "cli"), "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["policy"]["name"] == "strict" and body["accounting"]["ok"]
    assert [r["metric"] for r in body["policy_report"]["rules"]] == list(load_policy(
        str(tmp_path / "strict.yaml")).rules)
    assert (out / layout.INDEX_FILE).read_bytes() == before
    table = _run("curate", str(tmp_path / "cli"), "--policy", "default")
    assert table.returncode == 0 and "q_snr_db" in table.stdout and "policy default" in table.stdout
    bad = _run("curate", str(out), "--policy", _policy(tmp_path, "bad", "rules: {q_nope: {min: 1}}"))
    assert bad.returncode == 2 and "q_nope" in bad.stderr


def test_clean_without_policy_keeps_every_segment(corpus, tmp_path):
    result = _run("clean", str(corpus), "--out", str(tmp_path / "all"), "--runner", "local", "--json",
                  "--policy", "none")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["policy"] is None and manifest["held_shards"] == []
    assert manifest["counts"]["kept_sources"] == 4
    assert RejectReason.POLICY.value not in manifest["rejects_by_reason"]
