"""Model registry: versions, stages, digests, resolution, S3 download cache, and the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audiomill import storage
from audiomill.models.registry import (REGISTRY_ENV, ModelRegistry, RegistryError, files_digest,
                                       parse_ref, resolve_model, scan_dir)
from audiomill.cli.app import app
from audiomill.testing.s3 import create_bucket, moto_s3_server


def make_model(root: Path, text: str = "weights-1") -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "model.bin").write_text(text)
    (root / "config.json").write_text('{"a": 1}')
    (root / "sub" / "vocab.txt").write_text("x y z")
    (root / ".hidden").write_text("ignored")
    return root


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    return ModelRegistry(str(tmp_path / "registry"))


def test_register_numbers_versions_and_records_files_with_sha256(registry, tmp_path):
    source = make_model(tmp_path / "m1")
    first = registry.register("whisper-tiny", source, training_data="s3://data/round-0",
                              metrics={"wer": 0.2}, round=0, description="seed")
    second = registry.register("whisper-tiny", make_model(tmp_path / "m2", "weights-2"), parent=1)
    assert (first.ref, second.ref, second.parent) == ("whisper-tiny@1", "whisper-tiny@2", 1)
    assert [f.path for f in first.files] == ["config.json", "model.bin", "sub/vocab.txt"]
    assert first.files[1].sha256 == hashlib.sha256(b"weights-1").hexdigest()
    assert first.sha256 != second.sha256
    assert registry.get("whisper-tiny", 1) == first
    assert registry.names() == ["whisper-tiny"]
    assert [v.version for v in registry.versions("whisper-tiny")] == [1, 2]
    stored = Path(registry.root) / "whisper-tiny" / "1" / "files" / "sub" / "vocab.txt"
    assert stored.read_text() == "x y z"
    assert json.loads((Path(registry.root) / "whisper-tiny" / "1" / "meta.json").read_text())["metrics"] == {"wer": 0.2}


def test_lookup_by_number_latest_and_promoted_stage(registry, tmp_path):
    registry.register("asr", make_model(tmp_path / "a"))
    registry.register("asr", make_model(tmp_path / "b", "other"))
    assert registry.lookup("asr@latest").version == 2
    with pytest.raises(RegistryError, match="audiomill models promote asr@N production"):
        registry.lookup("asr@production")
    registry.promote("asr", 1, "production")
    assert registry.lookup("asr@production").version == 1
    registry.promote("asr", 2, "production")
    assert registry.lookup("asr@production").version == 2
    history = json.loads((Path(registry.root) / "asr" / "stages.json").read_text())["history"]
    assert [(h["version"], h["previous"]) for h in history] == [(1, None), (2, 1)]


@pytest.mark.parametrize("call, message", [
    (lambda r, src: r.register("bad@name", src), "model name"),
    (lambda r, src: r.register("m", src, parent=7), "parent version m@7"),
    (lambda r, src: r.promote("m", 1, "production"), "m@1 is not in registry"),
    (lambda r, src: r.lookup("m@3"), "versions: none"),
    (lambda r, src: r.lookup("not a ref"), "not a model reference"),
])
def test_bad_requests_raise_registry_errors(registry, tmp_path, call, message):
    with pytest.raises(RegistryError, match=message):
        call(registry, make_model(tmp_path / "src"))


def test_stage_names_are_checked(registry, tmp_path):
    registry.register("m", make_model(tmp_path / "src"))
    for stage in ("latest", "Prod", "3"):
        with pytest.raises(RegistryError, match="stage"):
            registry.promote("m", 1, stage)


def test_resolve_pins_refs_and_hashes_plain_directories(registry, tmp_path):
    source = make_model(tmp_path / "src")
    version = registry.register("m", source)
    registry.promote("m", 1, "production")
    pinned = resolve_model("m@production", registry.root)
    assert (pinned.ref, pinned.model_id, pinned.sha256) == ("m@1", "m@1", version.sha256)
    assert Path(pinned.local_dir(str(tmp_path / "cache"))) == Path(registry.root) / "m" / "1" / "files"
    plain = resolve_model(str(source))
    assert plain.sha256 == version.sha256 == files_digest(scan_dir(source))
    assert plain.model_id == f"src@sha256:{version.sha256[:12]}" and plain.registry is None
    assert plain.local_dir("unused") == str(source.resolve())
    assert parse_ref(str(source)) is None and parse_ref("m@production") == ("m", "production")


def test_resolve_names_the_missing_registry_setting(monkeypatch):
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    with pytest.raises(RegistryError, match=REGISTRY_ENV):
        resolve_model("whisper@production")


def test_local_registry_detects_truncated_files(registry, tmp_path):
    registry.register("m", make_model(tmp_path / "src"))
    pinned = resolve_model("m@1", registry.root)
    (Path(registry.root) / "m" / "1" / "files" / "model.bin").write_text("w")
    with pytest.raises(RegistryError, match="wrong size"):
        pinned.local_dir(str(tmp_path / "cache"))


def test_s3_registry_downloads_once_and_verifies_sha256(tmp_path):
    with moto_s3_server():
        create_bucket("models")
        registry = ModelRegistry("s3://models/registry")
        registry.register("m", make_model(tmp_path / "src"), metrics={"wer": 0.1})
        registry.promote("m", 1, "production")
        pinned = resolve_model("m@production", "s3://models/registry")
        assert pinned.ref == "m@1" and pinned.registry == "s3://models/registry"
        local = Path(pinned.local_dir(str(tmp_path / "cache")))
        assert (local / "sub" / "vocab.txt").read_text() == "x y z"
        assert files_digest(scan_dir(local)) == pinned.sha256
        storage.delete("s3://models/registry/m/1/files/model.bin")
        assert Path(pinned.local_dir(str(tmp_path / "cache"))) == local  # served from the cache
        storage.write_text("s3://models/registry/m/1/files/model.bin", "tampered")
        with pytest.raises(RegistryError, match="does not match"):
            pinned.local_dir(str(tmp_path / "other-cache"))


def test_models_cli_register_list_show_promote(tmp_path):
    runner = CliRunner()
    root = str(tmp_path / "reg")
    source = make_model(tmp_path / "src")
    result = runner.invoke(app, ["models", "register", "whisper-tiny", str(source), "--registry", root,
                                 "--metric", "wer=0.25", "--training-data", "s3://d/r0", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ref"] == "whisper-tiny@1"
    result = runner.invoke(app, ["models", "promote", "whisper-tiny@1", "production", "--registry", root])
    assert result.exit_code == 0 and "whisper-tiny@production -> whisper-tiny@1" in result.output
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"], env={REGISTRY_ENV: root}).output)
    assert [(r["ref"], r["stages"], r["metrics"]) for r in listed] == [("whisper-tiny@1", ["production"], {"wer": 0.25})]
    shown = runner.invoke(app, ["models", "show", "whisper-tiny@production", "--registry", root])
    assert shown.exit_code == 0 and "model.bin" in shown.output and "s3://d/r0" in shown.output
    table = runner.invoke(app, ["models", "list", "--registry", root], env={"COLUMNS": "200"})
    assert "whisper-tiny@1" in table.output and "production" in table.output
    missing = runner.invoke(app, ["models", "show", "whisper-tiny@9", "--registry", root])
    assert missing.exit_code == 2 and "not in registry" in missing.output
    bad_metric = runner.invoke(app, ["models", "register", "x", str(source), "-r", root, "--metric", "wer"])
    assert bad_metric.exit_code == 2
