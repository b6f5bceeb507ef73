"""``audiomill diarizer ...``: build pyannote.audio diarization pipelines that run offline."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from audiomill.cli.console import console, err_console, failure, usage_error

app = typer.Typer(help="Speaker diarization models: train a local pyannote.audio pipeline.",
                  no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Speaker diarization models (a group, so `train-pyannote` stays a subcommand)."""


@app.command("train-pyannote")
def train_pyannote(
    out: Annotated[Path, typer.Option(help="Pipeline directory to write (config.yaml + checkpoints).")],
    conversations: Annotated[int, typer.Option(min=1, help="Generated training conversations (espeak-ng, 2-3 voices, ~30 s each).")] = 8,
    dev_conversations: Annotated[int, typer.Option(min=1, help="Generated held-out conversations that pick the clustering threshold.")] = 2,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs of the segmentation model.")] = 20,
    data: Annotated[Optional[Path], typer.Option(help="Train on NAME.wav + NAME.rttm pairs (16 kHz mono) instead of generated speech.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for data generation and training.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train a small pyannote segmentation model (pyannote's own training API, CPU) and write a
    pipeline directory for `--set diarize.backend=pyannote --set diarize.pipeline_dir=OUT`.

    The pipeline is pyannote.audio's SpeakerDiarization: the trained segmentation model,
    Resemblyzer's pretrained speaker encoder (shipped in its PyPI package) as the embedding, and
    agglomerative clustering with a threshold tuned on held-out conversations. Nothing is
    downloaded. With pretrained pyannote weights on disk, skip this and point
    diarize.pipeline_dir at that directory instead.

    Example: audiomill diarizer train-pyannote --out models/pyannote-gen --conversations 8 --epochs 20
    """
    from audiomill.jobs.pyannote_train import PyannoteTrainRequest, run_pyannote_train
    from audiomill.models.diarization import DiarizerUnavailableError
    from audiomill.models.pyannote_training import SegmentationOptions

    if data is not None and not data.is_dir():
        raise usage_error(f"--data {data} is not a directory of WAV + RTTM pairs")
    if (out / "config.yaml").exists() and not (out / "corpus").is_dir():
        raise usage_error(f"--out {out} already holds a pipeline not written by this command")
    req = PyannoteTrainRequest(out=out, conversations=conversations, dev_conversations=dev_conversations,
                               data_dir=data, options=SegmentationOptions(epochs=epochs, seed=seed))
    say = err_console.print if as_json else console.print
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyannote/lightning warn about unused features
            result = run_pyannote_train(req, on_progress=lambda message: say(message, markup=False))
    except DiarizerUnavailableError as err:
        raise failure(str(err)) from err
    except (FileNotFoundError, ValueError) as err:
        raise usage_error(str(err)) from err
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    console.print(f"pipeline: {result.pipeline_dir} (threshold {result.threshold:.2f}, development "
                  f"DER {result.dev_der:.3f}, {result.train_files} training files, "
                  f"{result.train_audio_s:.0f} s, trained in {result.train_s:.0f} s)")
    console.print(f"use it: audiomill clean IN --out OUT --set diarize.enabled=true "
                  f"--set diarize.backend=pyannote --set diarize.pipeline_dir={result.pipeline_dir}",
                  markup=False)
