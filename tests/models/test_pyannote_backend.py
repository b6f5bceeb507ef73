"""pyannote.audio runs here: a segmentation model trained with pyannote's training API on generated
conversations, Resemblyzer as its embedding, the real SpeakerDiarization pipeline end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from audiomill import layout, schema
from audiomill.cli import diarizer as diarizer_cli
from audiomill.config import load_config
from audiomill.jobs.clean import run_clean
from audiomill.models import pyannote_backend
from audiomill.models.diarization import DiarizerUnavailableError
from audiomill.models.pyannote_backend import PyannoteDiarizer, check_pipeline_dir
from audiomill.schema import SAMPLE_RATE
from audiomill.testing.mixtures import Conversation, conversation, diarization_error_rate
from audiomill.testing.signals import write_audio

# Measured with TRAIN_ARGS (seed 0) on held-out conversation(2, 8 turns) in the default voices,
# collar 0.25 s, num_speakers=2: DER 0.189 (seed 7), 0.001 (seed 101), 0.023 (seed 102). Labelling
# everything one speaker scores 0.40-0.48 on these. With the count estimated (threshold tuned on
# 2 generated dev conversations) seed 7 came out as 1 speaker: this tiny model's count estimate is
# not reliable, see benchmarks/diarization_pyannote.py.
MAX_HELD_OUT_DER = 0.3
TRAIN_ARGS = ["--conversations", "4", "--dev-conversations", "2", "--epochs", "30"]


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pyannote") / "pipeline"
    result = CliRunner().invoke(diarizer_cli.app, ["train-pyannote", "--out", str(out), *TRAIN_ARGS, "--json"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def held_out() -> Conversation:
    return conversation(2, num_turns=8, seed=7)


def test_pyannote_imports_with_the_cpu_torch_pin():
    import pyannote.audio
    import torchaudio._extension as extension

    assert torch.__version__.startswith("2.13.0")
    assert pyannote.audio.__version__ == "4.0.7"
    assert not extension._IS_TORCHAUDIO_EXT_AVAILABLE  # pure-Python torchaudio (see Makefile)


def test_resemblyzer_embedding_separates_voices_under_pyannote_masks():
    from audiomill.models.pyannote_embedding import ResemblyzerEmbedding

    talk = conversation(2, num_turns=4, seed=11)
    chunk = torch.from_numpy(talk.audio[: 10 * SAMPLE_RATE])[None, None].repeat(3, 1, 1)
    frames = 589  # pyannote passes one activity value per segmentation frame
    times = (np.arange(frames) + 0.5) * 10.0 / frames
    masks = np.zeros((3, frames), np.float32)
    first, second = [t for t in talk.turns if t.end_s <= 10.0][:2]
    for row, turn in ((0, first), (1, second)):
        masks[row] = (times >= turn.start_s) & (times <= turn.end_s)
    masks[2, :10] = 1.0  # 0.17 s: too little speech to embed
    model = ResemblyzerEmbedding.pretrained()
    with torch.inference_mode():
        out = model(chunk, weights=torch.from_numpy(masks)).numpy()
        again = model(torch.from_numpy(talk.audio[None, None, int(second.start_s * SAMPLE_RATE):
                                                     int(second.end_s * SAMPLE_RATE)])).numpy()[0]
    assert first.speaker != second.speaker
    assert np.isnan(out[2]).all()  # pyannote drops NaN embeddings before clustering
    assert float(out[1] @ again) > float(out[0] @ again) + 0.05


@pytest.mark.slow
def test_trained_pipeline_diarizes_a_held_out_conversation(pipeline_dir: Path, held_out: Conversation):
    config = check_pipeline_dir(pipeline_dir)
    assert config["pipeline"]["name"] == "pyannote.audio.pipelines.SpeakerDiarization"
    assert {p.name for p in pipeline_dir.iterdir()} >= {"config.yaml", "segmentation", "embedding", "plda"}
    diarizer = PyannoteDiarizer(pipeline_dir, device="cpu", num_speakers=2)
    turns = diarizer.diarize(held_out.audio)
    reference = [(t.start_s, t.end_s, t.speaker) for t in held_out.turns]
    der = diarization_error_rate(reference, [(t.start_s, t.end_s, str(t.speaker)) for t in turns])
    assert len({t.speaker for t in turns}) == 2
    assert der < MAX_HELD_OUT_DER, der
    assert diarizer.version == f"pyannote:{pipeline_dir.name}"


@pytest.mark.slow
def test_clean_job_with_pyannote_backend_labels_segments(pipeline_dir: Path, held_out: Conversation,
                                                         tmp_path: Path):
    inputs = tmp_path / "in"
    write_audio(inputs / "talk.wav", held_out.audio, SAMPLE_RATE)
    out = tmp_path / "dataset"
    cfg = load_config(inputs=[str(inputs)], output=str(out), overrides=[
        "runner.kind=local", "diarize.enabled=true", "diarize.backend=pyannote",
        f"diarize.pipeline_dir={pipeline_dir}", "diarize.num_speakers=2"])
    assert run_clean(cfg).to_dict()["accounting"]["ok"]
    rows = pq.read_table(out / layout.INDEX_FILE).to_pylist()
    assert len(rows) >= 4
    assert {r[schema.DIAR_MODEL] for r in rows} == {f"pyannote:{pipeline_dir.name}"}
    speakers = {r[schema.DIAR_SPEAKER] for r in rows}
    assert len(speakers) == 2 and all(s.split(":")[-1] in ("S0", "S1") for s in speakers)


def test_cli_help_gives_an_example():
    result = CliRunner().invoke(diarizer_cli.app, ["train-pyannote", "--help"])
    assert result.exit_code == 0
    assert "audiomill diarizer train-pyannote --out" in result.output


def test_missing_config_names_the_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        PyannoteDiarizer(tmp_path)


def test_config_without_pipeline_name_is_a_clear_error(tmp_path: Path):
    (tmp_path / "config.yaml").write_text("pipeline: {}\n")
    with pytest.raises(ValueError, match="no pipeline.name"):
        PyannoteDiarizer(tmp_path)


def test_hub_model_names_are_refused_not_downloaded(tmp_path: Path):
    (tmp_path / "config.yaml").write_text(json.dumps({"pipeline": {
        "name": "pyannote.audio.pipelines.SpeakerDiarization",
        "params": {"segmentation": "pyannote/segmentation-3.0", "embedding": "$model/embedding"}}}))
    with pytest.raises(FileNotFoundError, match="segmentation.*hub names are not downloaded"):
        PyannoteDiarizer(tmp_path)


def test_unavailable_pyannote_says_what_to_install(tmp_path: Path, monkeypatch):
    (tmp_path / "config.yaml").write_text("pipeline: {name: pyannote.audio.pipelines.SpeakerDiarization}\n")

    def fail(name: str):
        raise OSError("Could not load this library: .../torchaudio/lib/_torchaudio.so")

    monkeypatch.setattr(pyannote_backend.importlib, "import_module", fail)
    with pytest.raises(DiarizerUnavailableError, match=r"audiomill\[diarize\].*torchaudio"):
        PyannoteDiarizer(tmp_path)


def test_cli_refuses_a_missing_data_dir_and_a_foreign_pipeline(tmp_path: Path):
    runner = CliRunner()
    missing = runner.invoke(diarizer_cli.app, ["train-pyannote", "--out", str(tmp_path / "p"),
                                               "--data", str(tmp_path / "nope")])
    flat = lambda text: " ".join(text.split())  # noqa: E731 (the console wraps long lines)
    assert missing.exit_code == 2 and "is not a directory of WAV + RTTM pairs" in flat(missing.output)
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "config.yaml").write_text("pipeline: {name: x}\n")
    foreign = runner.invoke(diarizer_cli.app, ["train-pyannote", "--out", str(tmp_path / "pretrained")])
    assert foreign.exit_code == 2 and "not written by this command" in flat(foreign.output)
