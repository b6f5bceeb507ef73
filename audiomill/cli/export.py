"""``audiomill export``: write a finished dataset in the formats trainers load (Lhotse, Hugging Face)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from audiomill import storage
from audiomill.cli.console import console, failure, usage_error
from audiomill.data.reader import ShardMismatchError
from audiomill.data.tables import DatasetError
from audiomill.exports.common import ExportSummary, MissingShardsError
from audiomill.exports.record import run_export

app = typer.Typer(name="export", no_args_is_help=True, add_completion=False,
                  help="Export a dataset to Lhotse manifests/Shar or a Hugging Face `datasets` dataset.")

DatasetArg = Annotated[str, typer.Argument(help="Dataset written by `audiomill clean` (dir or s3:// prefix).")]
OutArg = Annotated[Path, typer.Argument(help="Local output directory (created; must be empty).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the export summary as JSON.")]


def _run(dataset: str, out: Path, as_json: bool, export: Callable[[], ExportSummary]) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise usage_error(f"output {out} exists and is not an empty directory")
    try:
        summary = export()
    except MissingShardsError as err:
        raise failure(f"{err}; nothing was written (rerun `audiomill clean` to rebuild them)") from None
    except ShardMismatchError as err:
        raise failure(f"{err}; the index no longer matches its shards") from None
    except (DatasetError, FileNotFoundError) as err:
        raise usage_error(str(err)) from None
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2))
        return
    console.print(f"exported [bold]{summary.segments}[/bold] segments ({summary.seconds / 3600:.3f} h) "
                  f"of {escape(storage.redact(dataset))} to {escape(summary.out)}")
    for name in summary.files[:10]:
        console.print(f"  {escape(name)}")
    if summary.token_tables or summary.label_rounds:
        console.print(f"  with tokens {summary.token_tables} and labels {summary.label_rounds}")


@app.command("lhotse")
def lhotse_command(dataset: DatasetArg, out: OutArg, shar: Annotated[bool, typer.Option(
        "--shar", help="Write Lhotse Shar (cuts.*.jsonl.gz + recording.*.tar) instead of manifests.")] = False,
        as_json: JsonOpt = False) -> None:
    """Write Lhotse RecordingSet/SupervisionSet/CutSet manifests (audio as FLAC files) or Lhotse Shar.

    Supervisions carry transcript, language and speaker; quality columns, provenance, tokens and
    labels are custom fields. Load with `lhotse.CutSet.from_file(OUT/cuts.jsonl.gz)` or
    `CutSet.from_shar(in_dir=OUT)`.

    Example: audiomill export lhotse ./dataset ./dataset-lhotse --shar
    """
    _run(dataset, out, as_json, lambda: run_export(dataset, "lhotse", out, {"shar": shar}))


@app.command("hf")
def hf_command(dataset: DatasetArg, out: OutArg, as_json: JsonOpt = False) -> None:
    """Write a Hugging Face `datasets` dataset: parquet shards with an Audio column plus metadata.

    Open it offline with `datasets.load_dataset("OUT", split="train")`.

    Example: audiomill export hf ./dataset ./dataset-hf
    """
    _run(dataset, out, as_json, lambda: run_export(dataset, "hf", out, {}))
