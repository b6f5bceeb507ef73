"""Lhotse manifests, Lhotse Shar and Hugging Face parquet exports, loaded back by the real libraries."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audiomill import layout, schema
from audiomill.cli import export as export_cli

runner = CliRunner()


def _index(root) -> dict[str, dict]:
    return {row[schema.KEY]: row for row in pq.read_table(root / layout.INDEX_FILE).to_pylist()}


def _pcm(root, row) -> np.ndarray:
    """int16 samples of a segment, read by member name from its shard (independent of offsets)."""
    with tarfile.open(layout.shard_uri(str(root), row[schema.SHARD])) as tar:
        data = tar.extractfile(f"{row[schema.KEY]}.flac").read()
    return sf.read(io.BytesIO(data), dtype="int16")[0]


def _export(*args: str) -> dict:
    result = runner.invoke(export_cli.app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _check_cuts(cuts, root, index) -> None:
    seen = set()
    for cut in cuts:
        row = index[cut.id]
        seen.add(cut.id)
        audio = cut.load_audio()
        assert audio.shape == (1, len(_pcm(root, row)))
        np.testing.assert_array_equal(np.round(audio[0] * 32768).astype(np.int16), _pcm(root, row))
        assert cut.duration == pytest.approx(row[schema.AUDIO_DURATION_S], abs=1 / schema.SAMPLE_RATE)
        supervision = cut.supervisions[0]
        assert supervision.duration == cut.duration
        assert supervision.custom[schema.Q_SNR_DB] == pytest.approx(row[schema.Q_SNR_DB])
        assert supervision.custom[schema.SOURCE_URI] == row[schema.SOURCE_URI]
        assert supervision.custom["metadata"] == json.loads(row[schema.METADATA_JSON])
        assert cut.custom["tokens"] == supervision.custom["tokens"] and len(cut.custom["tokens"]) == 3
    assert seen == set(index)


def test_lhotse_manifests_round_trip(labeled_dataset, tmp_path):
    from lhotse import CutSet, RecordingSet, SupervisionSet

    out = tmp_path / "lhotse"
    summary = _export("lhotse", str(labeled_dataset), str(out))
    index = _index(labeled_dataset)
    assert summary["segments"] == len(index) and summary["token_tables"] == ["semantic@1"]
    recordings = RecordingSet.from_file(out / "recordings.jsonl.gz")
    supervisions = SupervisionSet.from_file(out / "supervisions.jsonl.gz")
    assert {r.id for r in recordings} == set(index) == {s.recording_id for s in supervisions}
    assert all(r.sampling_rate == schema.SAMPLE_RATE for r in recordings)
    cuts = CutSet.from_file(out / "cuts.jsonl.gz")
    _check_cuts(cuts, labeled_dataset, index)
    labeled = [c for c in cuts if c.supervisions[0].custom.get("label_emotion")]
    assert sorted(c.supervisions[0].custom["label_emotion"] for c in labeled) == ["calm", "calm", "happy"]
    licenses = {c.supervisions[0].custom["metadata"]["license"] for c in cuts}
    assert licenses == {"CC-BY-4.0", "CC0-1.0", "proprietary"}


def test_lhotse_shar_round_trip(labeled_dataset, tmp_path):
    from lhotse import CutSet

    out = tmp_path / "shar"
    _export("lhotse", str(labeled_dataset), str(out), "--shar")
    assert (out / "cuts.000000.jsonl.gz").is_file() and (out / "recording.000000.tar").is_file()
    _check_cuts(CutSet.from_shar(in_dir=out), labeled_dataset, _index(labeled_dataset))


def test_hf_parquet_round_trip_offline(labeled_dataset, tmp_path, monkeypatch):
    import datasets
    from datasets import Audio

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "hf"
    summary = _export("hf", str(labeled_dataset), str(out))
    assert len([f for f in summary["files"] if f.endswith(".parquet")]) == 3  # one per shard
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.features[schema.AUDIO] == Audio(sampling_rate=schema.SAMPLE_RATE)
    index = _index(labeled_dataset)
    assert sorted(loaded[schema.KEY]) == sorted(index)
    raw = loaded.cast_column(schema.AUDIO, Audio(decode=False))  # decoding needs torchcodec
    for example in raw:
        row = index[example[schema.KEY]]
        pcm, rate = sf.read(io.BytesIO(example[schema.AUDIO]["bytes"]), dtype="int16")
        assert rate == schema.SAMPLE_RATE
        np.testing.assert_array_equal(pcm, _pcm(labeled_dataset, row))
        assert len(pcm) / rate == pytest.approx(row[schema.AUDIO_DURATION_S], abs=1 / rate)
        assert example[schema.Q_SNR_DB] == pytest.approx(row[schema.Q_SNR_DB])
        assert example["tokens"] is not None and len(example["tokens"]) == 3
        assert schema.TAR_OFFSET not in example
    assert sorted(v for v in loaded["label_emotion"] if v) == ["calm", "calm", "happy"]


@pytest.mark.parametrize("kind", ["lhotse", "hf"])
def test_export_with_missing_shards_names_them_and_writes_nothing(labeled_dataset, tmp_path, kind):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(labeled_dataset, root)
    (root / layout.SHARDS_DIR / "shard-000001-000.tar").unlink()
    out = tmp_path / "out"
    result = runner.invoke(export_cli.app, [kind, str(root), str(out)])
    assert result.exit_code == 1
    assert "shard-000001-000.tar" in result.output and "missing" in result.output
    assert not out.exists()


def test_export_refuses_a_non_dataset_and_a_used_output(tmp_path, labeled_dataset):
    result = runner.invoke(export_cli.app, ["hf", str(tmp_path / "nothing"), str(tmp_path / "o")])
    assert result.exit_code == 2 and "index.parquet" in result.output
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    result = runner.invoke(export_cli.app, ["lhotse", str(labeled_dataset), str(used)])
    assert result.exit_code == 2 and "not an empty directory" in result.output


def test_lhotse_supervision_takes_transcript_language_and_speaker_from_asr_and_diarization():
    from lhotse import Recording

    from audiomill.exports.lhotse import _cut

    recording = Recording(id="k1", sources=[], sampling_rate=schema.SAMPLE_RATE, num_samples=16000, duration=1.0)
    row = {schema.KEY: "k1", schema.SHARD: "shard-000000-000.tar", schema.TAR_OFFSET: 512, schema.FLAC_BYTES: 9,
           schema.ASR_TEXT: "hello there", schema.ASR_LANGUAGE: "en", schema.DIAR_SPEAKER: "abc:S1",
           schema.ASR_AVG_LOGPROB: -0.25, schema.Q_SNR_DB: float("nan"), "tokens": [1, 2],
           schema.METADATA_JSON: '{"license": "CC0-1.0"}'}
    cut = _cut(row, recording, ["tokens"])
    supervision = cut.supervisions[0]
    assert (supervision.text, supervision.language, supervision.speaker) == ("hello there", "en", "abc:S1")
    assert supervision.custom == {schema.ASR_AVG_LOGPROB: -0.25, schema.Q_SNR_DB: None, "tokens": [1, 2],
                                  "metadata": {"license": "CC0-1.0"}}
    assert cut.custom == {"tokens": [1, 2]}


def test_export_is_recorded_for_takedown_and_a_read_only_dataset_still_exports(labeled_dataset, tmp_path,
                                                                               monkeypatch, caplog):
    from audiomill.exports import record

    out = tmp_path / "hf"
    _export("hf", str(labeled_dataset), str(out))
    mine = [r for r in record.recorded_exports(str(labeled_dataset)) if r.out == str(out.resolve())]
    assert [(r.format, r.here) for r in mine] == [("hf", True)]

    def refuse(uri, text):  # noqa: ANN001, ARG001 - a bucket we may read but not write
        raise PermissionError(f"write refused: {uri}")

    monkeypatch.setattr(record.storage, "write_text", refuse)
    summary = _export("lhotse", str(labeled_dataset), str(tmp_path / "lhotse"))
    assert summary["segments"] == len(_index(labeled_dataset))
    assert "a takedown will not refresh it" in caplog.text
