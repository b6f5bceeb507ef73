"""ASR stage: columns, per-source language ID, language rejects/tags, resources, runner grouping,
and `clean` end to end with a registry model (local runner and Ray)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audiomill import schema
from audiomill.config import AsrConfig, DecodeConfig, ShardConfig, VadConfig, load_config
from audiomill.models.registry import ModelRegistry, resolve_model
from audiomill.jobs.clean import run_clean
from audiomill.execution.runners import _gpu_pool_size, _group_by_device
from audiomill.pipelines.asr import AsrStage, asr_resources
from audiomill.pipelines.decode import DecodeStage
from audiomill.pipelines.segment import SegmentStage
from audiomill.pipelines.vad import VadStage
from audiomill.pipelines.writer import WriterStage
from audiomill.testing.signals import espeak, resample, silence, write_audio
from audiomill.testing.whisper import real_whisper_dir, tiny_whisper_dir, word_error_rate

SR = schema.SAMPLE_RATE
NUMERIC = [schema.ASR_LANGUAGE_PROB, schema.ASR_AVG_LOGPROB, schema.ASR_NO_SPEECH_PROB,
           schema.ASR_COMPRESSION_RATIO, schema.ASR_CHARS_PER_S, schema.ASR_NONSPEECH_TEXT_PROB]
SENTENCE = "The quick brown fox jumps over the lazy dog."


def segments_table(durations_by_source: dict[str, list[float]], seed: int = 0) -> pa.Table:
    """Segment rows with noise audio: per source, segments one after another."""
    rng = np.random.default_rng(seed)
    rows = []
    for source, durations in durations_by_source.items():
        start = 0.0
        for i, seconds in enumerate(durations):
            audio = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
            rows.append({schema.SOURCE_ID: source, schema.KEY: f"{source}{i}", schema.START_S: start,
                         schema.END_S: start + seconds, schema.AUDIO_DURATION_S: seconds,
                         schema.AUDIO: audio.tobytes()})
            start += seconds + 1.0
    return pa.Table.from_pylist(rows, schema=pa.schema([
        (schema.SOURCE_ID, pa.string()), (schema.KEY, pa.string()), (schema.START_S, pa.float64()),
        (schema.END_S, pa.float64()), (schema.AUDIO_DURATION_S, pa.float64()), (schema.AUDIO, pa.large_binary())]))


def tiny_stage(**overrides) -> AsrStage:
    cfg = AsrConfig(enabled=True, model=str(tiny_whisper_dir()), max_new_tokens=8, **overrides)
    return AsrStage(cfg, resolve_model(cfg.model))


@pytest.fixture(scope="module")
def tagged() -> tuple[pa.Table, str]:
    """The tiny random model over two sources, any language allowed, with word timestamps."""
    out = tiny_stage(word_timestamps=True)(segments_table({"a": [2.0, 3.5, 1.2], "b": [4.0]}))
    return out, out[schema.ASR_LANGUAGE][0].as_py()


def test_every_segment_gets_numeric_asr_columns_and_the_model_id(tagged):
    out, _ = tagged
    assert out.num_rows == 4 and out[schema.REJECT_REASON].null_count == 4
    for name in NUMERIC:
        assert out.schema.field(name).type == pa.float64() and out[name].null_count == 0, name
    texts = out[schema.ASR_TEXT].to_pylist()
    assert all(texts)
    chars = np.array([len(t) for t in texts]) / np.array(out[schema.AUDIO_DURATION_S].to_pylist())
    assert np.allclose(out[schema.ASR_CHARS_PER_S].to_numpy(), chars)
    assert out[schema.ASR_NONSPEECH_TEXT_PROB].to_pylist() == out[schema.ASR_NO_SPEECH_PROB].to_pylist()
    model_ids = set(out[schema.ASR_MODEL].to_pylist())
    assert model_ids == {f"model@sha256:{resolve_model(str(tiny_whisper_dir())).sha256[:12]}"}
    assert out.column(schema.timing_column("asr")).null_count == 0


def test_word_timestamps_are_structs_inside_each_segment(tagged):
    out, _ = tagged
    assert out.schema.field(schema.ASR_WORDS).type.value_type == pa.struct(
        [("word", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()), ("prob", pa.float64())])
    for words, duration in zip(out[schema.ASR_WORDS].to_pylist(), out[schema.AUDIO_DURATION_S].to_pylist()):
        assert words and all(0 <= w["start_s"] <= w["end_s"] <= duration for w in words)


def test_language_is_identified_once_per_source(tagged):
    out, language = tagged
    by_source = {}
    for source, lang, prob in zip(out[schema.SOURCE_ID].to_pylist(), out[schema.ASR_LANGUAGE].to_pylist(),
                                  out[schema.ASR_LANGUAGE_PROB].to_pylist()):
        by_source.setdefault(source, set()).add((lang, prob))
    assert all(len(values) == 1 for values in by_source.values())
    assert language in {lang for values in by_source.values() for lang, _ in values}


def test_other_languages_are_rejected_with_reason_language(tagged):
    _, language = tagged
    other = "en" if language != "en" else "de"
    out = tiny_stage(languages=[other])(segments_table({"a": [2.0, 3.5], "b": [4.0]}))
    assert out[schema.REJECT_REASON].to_pylist() == [schema.RejectReason.LANGUAGE.value] * 3
    assert set(out[schema.REJECT_STAGE].to_pylist()) == {"asr"}
    assert all(f"language {language}" in d and other in d for d in out[schema.REJECT_DETAIL].to_pylist())
    assert out[schema.AUDIO].null_count == 3 and out[schema.ASR_TEXT].null_count == 3
    kept = tiny_stage(languages=[other, language])(segments_table({"a": [2.0]}))
    assert kept[schema.REJECT_REASON].null_count == 1


def test_tag_mode_keeps_and_transcribes_other_languages(tagged):
    _, language = tagged
    other = "en" if language != "en" else "de"
    out = tiny_stage(languages=[other], on_other_language="tag")(segments_table({"a": [2.0]}))
    assert out[schema.REJECT_REASON].null_count == 1
    assert out[schema.ASR_LANGUAGE].to_pylist() == [language] and out[schema.ASR_TEXT][0].as_py()


def test_earlier_rejects_pass_through_untouched():
    table = segments_table({"a": [2.0, 1.5]})
    table = table.append_column(schema.REJECT_REASON, pa.array([None, "too_short"], pa.string()))
    out = tiny_stage()(table)
    rejected = out.filter(pa.compute.is_valid(out[schema.REJECT_REASON]))
    assert rejected.num_rows == 1 and rejected[schema.ASR_TEXT].null_count == 1


def test_english_only_model_refuses_other_allowed_languages():
    model = str(real_whisper_dir("tiny.en"))
    stage = AsrStage(AsrConfig(enabled=True, model=model, languages=["en", "de"]), resolve_model(model))
    with pytest.raises(ValueError, match=r"asr.languages: \['de'\].*English-only"):
        stage.setup()


def test_resources_and_runner_groups_for_gpu_and_cpu_asr():
    gpu = AsrConfig(enabled=True, model="m@1", device="cuda", num_gpus=0.25)
    assert asr_resources(gpu).num_gpus == 0.25
    assert asr_resources(AsrConfig(cpu_threads=2)).num_cpus == 2.0
    model = resolve_model(str(tiny_whisper_dir()))
    front = [DecodeStage(DecodeConfig()), VadStage(VadConfig()), SegmentStage()]
    writer = WriterStage("out", ShardConfig(), "fp")
    groups = _group_by_device([*front, AsrStage(gpu, model), writer])
    assert [[s.name for s in g] for g in groups] == [["decode", "vad", "segment"], ["asr"], ["write"]]
    assert [max(s.resources.num_gpus for s in g) for g in groups] == [0.0, 0.25, 0.0]
    assert len(_group_by_device([*front, AsrStage(AsrConfig(enabled=True, model="m@1"), model), writer])) == 1
    assert _gpu_pool_size({"GPU": 1.0}, 0.25, parts=100) == 4
    assert _gpu_pool_size({"GPU": 2.0}, 1.0, parts=1) == 1
    with pytest.raises(RuntimeError, match="asr.device=cpu"):
        _gpu_pool_size({"CPU": 8.0}, 0.5, parts=3)


# -- clean end to end: real tiny.en weights through a local registry -------------------------------


@pytest.fixture(scope="module")
def asr_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("asr-corpus")
    audio, sr = espeak(SENTENCE, "en-us", speed=140)
    speech = resample(audio, sr, SR).astype(np.float32)
    write_audio(root / "speech.wav", np.concatenate([silence(0.5, SR), speech, silence(0.5, SR)]), SR)
    write_audio(root / "silence.wav", silence(2.0, SR), SR)
    return root


@pytest.fixture(scope="module")
def registry_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("registry"))
    registry = ModelRegistry(root)
    registry.register("whisper-tiny-en", real_whisper_dir("tiny.en"), metrics={"espeak_wer": 0.21})
    registry.promote("whisper-tiny-en", 1, "production")
    return root


def asr_job(corpus: Path, out: Path, registry_root: str, runner: str):
    cfg = load_config(inputs=[str(corpus)], output=str(out), overrides=[
        f"runner.kind={runner}", "runner.num_cpus=2", "asr.enabled=true", "asr.word_timestamps=true",
        "asr.model=whisper-tiny-en@production", f"models.registry={registry_root}", "asr.languages=[en]"])
    return run_clean(cfg).to_dict()


@pytest.fixture(scope="module")
def local_asr_dataset(asr_corpus, registry_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("asr-local") / "dataset"
    return out, asr_job(asr_corpus, out, registry_root, "local")


def test_clean_with_asr_records_pinned_model_and_transcripts(local_asr_dataset, registry_root):
    out, manifest = local_asr_dataset
    version = ModelRegistry(registry_root).get("whisper-tiny-en", 1)
    assert manifest["models"]["asr"] == {"id": "whisper-tiny-en@1", "ref": "whisper-tiny-en@1",
                                         "sha256": version.sha256, "registry": registry_root}
    assert manifest["config"]["asr"]["model"] == "whisper-tiny-en@1"  # the stage alias was pinned
    assert manifest["accounting"]["ok"] and "asr" in manifest["stages"]
    index = pq.read_table(out / "index.parquet")
    assert index.num_rows == 1 and index[schema.ASR_MODEL].to_pylist() == ["whisper-tiny-en@1"]
    assert word_error_rate(SENTENCE, index[schema.ASR_TEXT][0].as_py()) <= 0.25
    assert index[schema.ASR_LANGUAGE].to_pylist() == ["en"] and index[schema.ASR_LANGUAGE_PROB][0].as_py() is None
    for name in NUMERIC[1:]:
        assert pa.types.is_floating(index.schema.field(name).type)
    shard = next((out / "shards").glob("*.tar"))
    with tarfile.open(shard) as tar:
        meta = json.loads(next(tar.extractfile(m) for m in tar.getmembers() if m.name.endswith(".json")).read())
    assert meta[schema.ASR_TEXT] == index[schema.ASR_TEXT][0].as_py() and meta[schema.ASR_WORDS][0]["word"]


def test_promoting_a_new_version_redoes_parts(local_asr_dataset, asr_corpus, registry_root, tmp_path):
    out = tmp_path / "dataset"
    shutil.copytree(local_asr_dataset[0], out)
    first = local_asr_dataset[1]
    again = asr_job(asr_corpus, out, registry_root, "local")
    assert again["counts"]["parts_resumed"] == again["counts"]["parts"]
    registry = ModelRegistry(registry_root)
    registry.register("whisper-tiny-en", real_whisper_dir("tiny.en"), parent=1)
    registry.promote("whisper-tiny-en", 2, "production")
    try:
        moved = asr_job(asr_corpus, out, registry_root, "local")
    finally:
        registry.promote("whisper-tiny-en", 1, "production")
    assert moved["counts"]["parts_resumed"] == 0 and moved["models"]["asr"]["id"] == "whisper-tiny-en@2"
    assert moved["config_fingerprint"] != first["config_fingerprint"]


@pytest.mark.slow
def test_ray_runner_gives_the_same_index_as_local(local_asr_dataset, asr_corpus, registry_root,
                                                  ray_local, tmp_path):
    local_out, _ = local_asr_dataset
    manifest = asr_job(asr_corpus, tmp_path / "ray", registry_root, "ray")
    assert manifest["accounting"]["ok"]
    assert pq.read_table(tmp_path / "ray" / "index.parquet").equals(pq.read_table(local_out / "index.parquet"))


def test_cli_missing_model_is_a_usage_error_naming_the_directory(asr_corpus, tmp_path):
    missing = tmp_path / "no-such-whisper"
    result = subprocess.run([sys.executable, "-m", "audiomill", "clean", str(asr_corpus), "--out",
                             str(tmp_path / "o"), "--set", "asr.enabled=true", "--set", f"asr.model={missing}",
                             "--dry-run"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "400"})  # the error names a long tmp path unwrapped
    assert result.returncode == 2
    assert str(missing) in result.stderr and "ct2-transformers-converter" in result.stderr
