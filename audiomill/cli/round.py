"""``audiomill round``: run self-labeling rounds on a cleaned dataset and show what they measured."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table

from audiomill.cli.console import console, err_console, failure, usage_error
from audiomill.config import apply_override
from audiomill.rounds.config import RoundConfig

app = typer.Typer(help="Self-labeling rounds: annotate, re-synthesize, verify against the original, "
                       "train the next models.", no_args_is_help=True)


def _config(budget_hours: float, address: str | None, registry: str, tokenizer: str,
            overrides: list[str]) -> RoundConfig:
    data: dict = {"budget_hours": budget_hours, "registry": registry, "tokenizer": tokenizer}
    if address:
        data["address"] = address
    for item in overrides:
        apply_override(data, item)
    try:
        return RoundConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise usage_error(f"invalid round config: {problems}") from err


@app.command("run")
def run(dataset: str = typer.Argument(..., help="dataset made by `audiomill clean` (local dir)"),
        rounds: int = typer.Option(1, "--rounds", min=1, help="full rounds to run (after finishing an "
                                   "interrupted one; a bootstrap round 0 runs first if no heads exist)"),
        budget_hours: float = typer.Option(1.0, "--budget-hours", help="re-synthesis budget per round, hours "
                                           "of original audio (least confident first + a random slice)"),
        address: str = typer.Option(None, "--address", help="Ray cluster address, or 'auto'; default: an "
                                    "embedded local Ray"),
        registry: str = typer.Option("", "--registry", help="model registry root (default: "
                                     "$AUDIOMILL_MODEL_REGISTRY or ~/.local/share/audiomill/registry)"),
        tokenizer: str = typer.Option("", "--tokenizer", help="semantic tokenizer (dir or registry ref, e.g. "
                                      "tok@production): adds the token-space content check and trains the "
                                      "token generator (text + profile -> tokens) each round"),
        overrides: list[str] = typer.Option([], "--set", help="round setting, e.g. thresholds.snr_max_diff_db=6"),
        as_json: bool = typer.Option(False, "--json", help="print the phase summaries as JSON")) -> None:
    """Run N rounds on DATASET; each phase resumes where a killed run stopped.

    Example: audiomill round run out/dataset --rounds 3 --budget-hours 2
    """
    from audiomill.jobs.rounds.run import run_rounds
    from audiomill.rounds.segments import DatasetError

    if not Path(dataset).is_dir():
        raise usage_error(f"dataset {dataset} is not a directory")
    cfg = _config(budget_hours, address, registry, tokenizer, overrides)
    if cfg.tokenizer:
        from audiomill.models.registry import RegistryError
        from audiomill.models.tokenizer import SemanticTokenizer

        try:  # reads tokenizer.json only: a wrong path fails here, not after Ray has started
            SemanticTokenizer.load(cfg.tokenizer, cfg.registry)
        except (FileNotFoundError, RegistryError, ValueError) as err:
            raise usage_error(f"tokenizer {cfg.tokenizer!r}: {err}") from err
    printed: list[dict] = []

    def show(number: int, phase: str, summary: dict) -> None:
        printed.append({"round": number, "phase": phase, **summary})
        if not as_json:
            err_console.print(f"round {number:03d} {phase:<12} {summary.get('wall_s', 0):7.1f} s")

    try:
        run_rounds(dataset, cfg, rounds, show)
    except (DatasetError, FileNotFoundError) as err:
        raise usage_error(str(err)) from err
    except RuntimeError as err:
        raise failure(str(err)) from err
    if as_json:
        console.print_json(json.dumps(printed, default=str))


@app.command("status")
def status(dataset: str = typer.Argument(..., help="dataset directory"),
           as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Where each round of DATASET stands: phases done, the next one.

    Example: audiomill round status out/dataset
    """
    from audiomill.jobs.rounds.report import round_status

    rows = round_status(dataset)
    if as_json:
        console.print_json(json.dumps([r.__dict__ for r in rows], default=list))
        return
    table = Table("round", "done", "next phase", "wall s")
    for r in rows:
        table.add_row(f"{r.number:03d}", ", ".join(r.done) or "-", r.next_phase or "finished",
                      f"{sum(r.wall_s.values()):.1f}")
    console.print(table if rows else "no rounds yet: `audiomill round run DATASET`")


@app.command("report")
def report(dataset: str = typer.Argument(..., help="dataset directory"),
           as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """What each round measured: acceptance, agreement scores, reject reasons, model gate.

    Example: audiomill round report out/dataset --json
    """
    from audiomill.jobs.rounds.report import round_report

    reports = round_report(dataset)
    if as_json:
        console.print_json(json.dumps([r.to_json() for r in reports]))
        return
    table = Table("round", "verified", "accepted", "content dist", "reasons", "candidate acc", "parent acc",
                  "promoted", "generator agreement (parent)", "promoted")
    for r in reports:
        verify, reg = r.phases.get("verify") or {}, r.phases.get("register") or {}
        dist = r.mean_scores.get("ver_content_state_dist")
        table.add_row(f"{r.number:03d}", str(verify.get("verified", "-")), str(verify.get("accepted", "-")),
                      f"{dist:.3f}" if dist is not None else "-",
                      ", ".join(f"{k}={v}" for k, v in r.reasons.items()) or "-",
                      _num(reg.get("candidate_eval_acc")), _num(reg.get("parent_eval_acc")),
                      str(reg.get("promoted", "-")), _generator_cell(reg.get("generator") or {}),
                      str((reg.get("generator") or {}).get("promoted", "-")))
    console.print(table if reports else "no rounds yet: `audiomill round run DATASET`")


def _generator_cell(reg: dict) -> str:
    if "skipped" in reg:
        return "not trained" if reg["skipped"].startswith("no tokenizer") else reg["skipped"]
    return f"{_num(reg.get('candidate_eval_agreement'))} ({_num(reg.get('parent_eval_agreement'))})" if reg else "-"


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) and value == value else "-"


@app.command("speak")
def speak(text: str = typer.Argument(..., help="what to say"),
          out: Path = typer.Option(..., "--out", help="WAV file to write (16 kHz)"),
          generator: str = typer.Option("generation-tokens@production", "--generator",
                                        help="token generator dir or registry ref (trained by rounds)"),
          tokenizer: str = typer.Option("", "--tokenizer", help="tokenizer whose decoder speaks the tokens; "
                                        "default: the one the generator was trained on"),
          profile: list[str] = typer.Option([], "--profile", help="speaker profile, e.g. ann_gender=female "
                                            "ann_rate_band=slow (unset fields: unknown)"),
          language: str = typer.Option("en", "--language", help="ISO code espeak-ng reads the text in"),
          registry: str = typer.Option("", "--registry", help="model registry root")) -> None:
    """Say TEXT with the trained token generator, decoded by the tokenizer's decoder.

    Example: audiomill round speak "Front center" --profile ann_gender=female --out say.wav
    """
    import soundfile as sf

    from audiomill.jobs.rounds.speak import speak as say
    from audiomill.models.registry import RegistryError

    pairs = [item.split("=", 1) for item in profile]
    if any(len(p) != 2 for p in pairs):
        raise usage_error("--profile takes FIELD=VALUE, e.g. ann_gender=female")
    try:
        spoken = say(text, dict(pairs), generator=generator, tokenizer=tokenizer, language=language,
                     registry=registry)
    except (FileNotFoundError, RegistryError, ValueError) as err:
        raise usage_error(str(err)) from err
    sf.write(out, spoken.audio, 16_000, subtype="PCM_16")
    console.print(f"wrote {out} ({spoken.audio.size / 16_000:.2f} s from {spoken.tokens.size} tokens of "
                  f"{spoken.generator})")
