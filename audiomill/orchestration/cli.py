"""The ``audiomill`` command line. Commands are thin: parse, build config, call, render."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from audiomill import __version__, storage
from audiomill.config import CleanConfig, ConfigError, load_config
from audiomill.orchestration.models_cli import models_app

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="audiomill", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Turn raw audio into clean, segmented WebDataset shards for audio LLMs.\n\n"
         "Start with `audiomill demo`, then `audiomill clean DIR --out OUT` on your own audio.")
app.add_typer(models_app, name="models")
console = Console()
err_console = Console(stderr=True)


def _usage_error(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(storage.redact(message))}")
    return typer.Exit(EXIT_USAGE)


def _build_config(inputs: list[str], out: str, config: Path | None, sets: list[str] | None,
                  runner: str | None, cpus: int | None) -> CleanConfig:
    overrides = list(sets or [])
    if runner:
        overrides.append(f"runner.kind={runner}")
    if cpus:
        overrides.append(f"runner.num_cpus={cpus}")
    return load_config(config, overrides, inputs=inputs or None, output=out or None)


@app.command()
def clean(
    inputs: Annotated[Optional[list[str]], typer.Argument(
        help="Audio files, directories, manifests (.jsonl/.csv/.parquet), .tar archives or s3:// "
             "prefixes (or `inputs:` in --config).")] = None,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", help="Output dataset: a directory or s3:// prefix (or `output:` in --config).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML or TOML job config.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config value, e.g. --set vad.threshold=0.6 (repeatable).")] = None,
    runner: Annotated[Optional[str], typer.Option(help="ray (default) or local (in-process, for debugging).")] = None,
    cpus: Annotated[Optional[int], typer.Option(help="CPUs for the local Ray instance.")] = None,
    gpus: Annotated[Optional[float], typer.Option(help="Run ASR on CUDA with this many GPUs per actor "
                                                       "(0.25 puts 4 actors on a card).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate config and list parts; run nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON instead of tables.")] = False,
    address: Annotated[Optional[str], typer.Option(
        "--address", help="Submit to a Ray cluster's Jobs API (http://HEAD:8265, or `auto` for the cluster "
                          "from `audiomill cluster up`) instead of running here.")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="With --address: print the job id and return.")] = False,
    policy: Annotated[Optional[str], typer.Option(
        "--policy", help="Filter policy YAML; `default` (the shipped one) unless set; `none` keeps every "
                         "segment.")] = None,
) -> None:
    """Decode, detect speech, cut segments and write WebDataset shards with index, rejects and manifest.

    Every segment gets quality metrics (q_* columns); a filter policy (--policy) rejects segments
    failing its rules, and a per-rule report of kept/rejected hours is printed at the end.
    Rerunning the same command resumes: finished parts are skipped.

    Example: audiomill clean ./raw s3://bucket/crawl-01 --out ./dataset --set vad.threshold=0.6
    """
    from audiomill.orchestration.clean_job import plan_job, run_clean
    from audiomill.pipelines.asr import pin_asr_model
    from audiomill.orchestration.progress import RichJobProgress
    from audiomill.pipelines.ingest import check_inputs

    try:
        gpu_sets = ["asr.device=cuda", f"asr.num_gpus={gpus}"] if gpus else []
        policy_sets = [f"policy={_policy_value(policy)}"] if policy else []
        cfg = _build_config(inputs or [], out or "", config, [*(set_ or []), *gpu_sets, *policy_sets],
                            runner, cpus)
        if not cfg.output:
            raise ConfigError("output: give --out (or `output:` in the config file)")
        check_inputs(cfg.inputs)
        cfg.policy_digest()  # a missing or invalid policy file is a usage error
        cfg, _ = pin_asr_model(cfg)  # a missing model or registry version is a usage error
        if dry_run:
            plan = plan_job(cfg)
            result = {"parts": len(plan.parts), "parts_to_run": len(plan.todo), "sources": plan.sources,
                      "skipped_by_filter": plan.listing.skipped_by_filter,
                      "config": cfg.model_dump(mode="json")}
            console.print_json(json.dumps(result)) if as_json else _print_plan(result)
            return
    except (ConfigError, FileNotFoundError, ValueError) as err:
        raise _usage_error(str(err)) from err
    if address:
        from audiomill.orchestration.cli_ops import submit_and_follow

        submit_and_follow(cfg, address, detach, as_json)
        return
    _quiet_ray_logs()
    try:
        if as_json:
            with _stdout_to_stderr():  # Ray and libraries print; stdout carries only the JSON
                manifest = run_clean(cfg)
                _shutdown_ray()
        elif not console.is_terminal:
            manifest = run_clean(cfg)
        else:
            with RichJobProgress(console) as progress:
                manifest = run_clean(cfg, progress)
    except Exception as err:  # noqa: BLE001 - report any job failure as exit 1 with its message
        trace = "".join(traceback.format_exception(err))
        logging.getLogger("audiomill").debug("job failed: %s", storage.mask_secrets(trace, *cfg.inputs, cfg.output))
        err_console.print(f"[red]job failed:[/red] {escape(storage.redact_error(err, *cfg.inputs, cfg.output))}")
        raise typer.Exit(EXIT_FAILED) from err
    if as_json:
        print(json.dumps(manifest, indent=2))
    else:
        _print_summary(_summary(cfg.output))
        if manifest.get("policy_report"):
            _print_policy_report(manifest["policy"], manifest["policy_report"])


@app.command()
def curate(
    dataset: Annotated[str, typer.Argument(help="A dataset made by `audiomill clean` (dir or s3://).")],
    policy: Annotated[str, typer.Option("--policy", "-p", help="Filter policy YAML to apply (`default` = "
                                                                "the shipped one).")],
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", help="Write the curated dataset here (shards hard-linked or copied, never re-packed); "
                            "default: rewrite DATASET's index, rejects and manifest in place.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print policy, report and counts as JSON.")] = False,
) -> None:
    """Re-apply a filter policy to a finished dataset without decoding audio.

    Kept and policy-rejected segments are re-evaluated from index.parquet and rejects.parquet, so a
    segment an earlier policy rejected comes back when the new one keeps it. Prints kept/rejected
    hours per rule (and hours failing only that rule) to help tune thresholds.

    Example: audiomill curate ./dataset --policy strict.yaml --out ./dataset-strict
    """
    from audiomill.orchestration.curate import CurateError, curate_dataset

    try:
        manifest = curate_dataset(dataset, policy, out)
    except (ConfigError, FileNotFoundError) as err:
        raise _usage_error(str(err)) from err
    except CurateError as err:
        err_console.print(f"[red]curate failed:[/red] {escape(str(err))}")
        raise typer.Exit(EXIT_FAILED) from err
    if as_json:
        print(json.dumps({key: manifest[key] for key in ("policy", "policy_report", "counts", "hours_out",
                                                          "rejects_by_reason", "accounting")}, indent=2))
    else:
        _print_policy_report(manifest["policy"], manifest["policy_report"])
        console.print(f"wrote [bold]{out or dataset}[/bold]: {manifest['counts']['segments']} segments, "
                      f"{manifest['hours_out']:.3f} h kept")


def _policy_value(policy: str) -> str:
    """A --policy argument as a ``--set policy=`` value (YAML): `none` disables filtering."""
    return "null" if policy.strip().lower() == "none" else json.dumps(policy)


def _print_policy_report(policy: dict[str, Any], report: dict[str, Any]) -> None:
    table = Table(Column("rule", no_wrap=True), Column("bounds", no_wrap=True), "rejected segs",
                  "rejected h", "h failing only this rule",
                  title=f"policy {policy['name']} ({policy['digest']}): kept {report['kept_hours']:.3f} h "
                        f"({report['kept_segments']} segs), rejected {report['rejected_hours']:.3f} h "
                        f"({report['rejected_segments']}) of {report['total_hours']:.3f} h")
    for row in report["rules"]:
        bounds = " ".join(f"{k} {row[k]:g}" for k in ("min", "max") if row[k] is not None)
        table.add_row(row["metric"], bounds, str(row["rejected_segments"]), f"{row['rejected_hours']:.3f}",
                      f"{row['only_hours']:.3f}")
    console.print(table)


@app.command()
def crawl(
    urls_file: Annotated[str, typer.Argument(help="URL list: text (one URL a line, # comments) or .jsonl "
                                                  "(a url column; license, source... become metadata).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Output dataset: a directory or s3:// prefix.")],
    raw: Annotated[Optional[str], typer.Option(
        "--raw", help="Where fetched files are stored (dir or s3://); default OUT/_raw.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML or TOML job config.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config value, e.g. --set crawl.per_host_rate=0.5 (repeatable).")] = None,
    runner: Annotated[Optional[str], typer.Option(help="ray (default) or local, for the clean job.")] = None,
    cpus: Annotated[Optional[int], typer.Option(help="CPUs for the local Ray instance.")] = None,
    allow_any_domain: Annotated[bool, typer.Option(
        "--allow-any-domain", help="Fetch from any public host instead of crawl.allowed_domains.")] = False,
    fetch_only: Annotated[bool, typer.Option(
        "--fetch-only", help="Fetch and write OUT/_crawl/manifest.jsonl; don't run clean.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON, no progress.")] = False,
) -> None:
    """Fetch audio from HTTP(S) URLs, or from pages listing audio links, then clean it into a dataset.

    Only hosts in crawl.allowed_domains are fetched, politely: robots.txt, per-host rate limits.

    Licenses come from the list, HTTP headers or page metadata; failed URLs become rejects.

    Rerunning the same command skips URLs already fetched and resumes the clean job.

    Example: audiomill crawl urls.txt --out ./dataset --set crawl.allowed_domains=example.org
    """
    from audiomill.orchestration.crawl_job import check_crawl_config, clean_fetched, fetch_urls
    from audiomill.orchestration.crawl_progress import RichCrawlProgress
    from audiomill.orchestration.progress import RichJobProgress

    try:
        overrides = list(set_ or []) + (["crawl.allow_any_domain=true"] if allow_any_domain else [])
        cfg = _build_config([], out, config, overrides, runner, cpus)
        check_crawl_config(cfg, urls_file)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        raise _usage_error(str(err)) from err
    _quiet_ray_logs()
    quiet = as_json or not console.is_terminal
    try:
        if quiet:
            report = fetch_urls(cfg, urls_file, raw)
        else:
            with RichCrawlProgress(console) as crawl_progress:
                report = fetch_urls(cfg, urls_file, raw, crawl_progress)
        dataset = None
        if not fetch_only:
            if quiet:
                dataset = clean_fetched(cfg)
            else:
                with RichJobProgress(console) as clean_progress:
                    dataset = clean_fetched(cfg, clean_progress)
    except Exception as err:  # noqa: BLE001 - report any job failure as exit 1 with its message
        logging.getLogger("audiomill").debug("crawl failed", exc_info=True)
        err_console.print(f"[red]crawl failed:[/red] {storage.redact(str(err))}")
        raise typer.Exit(EXIT_FAILED) from err
    if as_json:
        print(json.dumps({"crawl": report, "dataset": dataset}, indent=2))
        return
    console.print(f"crawl: {report['fetched']} fetched, {report['cached']} already fetched, "
                  f"{report['failed']} failed {report['failed_by_reason'] or ''}; manifest {report['manifest']}")
    if dataset is not None:
        _print_summary(_summary(cfg.output))


@app.command()
def inspect(
    dataset: Annotated[str, typer.Argument(help="A dataset made by `audiomill clean` (dir or s3://).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Summarize a dataset: counts, hours, segment duration histogram, top reject reasons.

    Example: audiomill inspect ./dataset
    """
    try:
        summary = _summary(dataset)
    except FileNotFoundError as err:
        raise _usage_error(str(err)) from err
    print(json.dumps(summary, indent=2)) if as_json else _print_summary(summary)


@app.command()
def dashboard(
    dataset: Annotated[str, typer.Argument(help="A dataset made by `audiomill clean` (dir or s3://).")],
    port: Annotated[int, typer.Option(help="Port to serve on (0: any free port).")] = 8501,
    host: Annotated[str, typer.Option(help="Address to bind; loopback only unless --allow-remote.")] = "127.0.0.1",
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a non-loopback --host (the dashboard has no login).")] = False,
    compare: Annotated[Optional[list[str]], typer.Option(
        "--compare", help="Another dataset to show side by side on the Compare page (repeatable).")] = None,
) -> None:
    """Open the quality dashboard (Streamlit): overview, metric histograms, rejects, shards, listen.

    Serves http://127.0.0.1:PORT (this machine only, unless --allow-remote) until Ctrl-C.

    Example: audiomill dashboard ./dataset --port 8502 --compare ./older-dataset
    """
    from audiomill.dashboards.launch import DashboardError, check_bind, free_port, serve, start_dashboard

    try:
        check_bind(host, allow_remote)
        port = port or free_port(host)
        process = start_dashboard(dataset, port, host, compare or [], allow_remote=allow_remote)
    except (DashboardError, FileNotFoundError, OSError) as err:
        raise _usage_error(storage.redact(str(err))) from err
    console.print(f"dashboard for {storage.redact(dataset)} at http://{host}:{port} (Ctrl-C stops)")
    raise typer.Exit(serve(process))


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where the corpus and dataset go.")] = Path("demo"),
    run: Annotated[bool, typer.Option("--run/--no-run", help="Also run `clean` on the corpus.")] = True,
    runner: Annotated[str, typer.Option(help="ray or local.")] = "ray",
    cpus: Annotated[Optional[int], typer.Option(help="CPUs for the local Ray instance.")] = None,
) -> None:
    """Generate the demo corpus (speech, noise, music, duplicates, broken files) and clean it.

    Example: audiomill demo --dir /tmp/demo
    """
    from audiomill.testing.corpus import make_demo_corpus

    corpus = workdir / "corpus"
    truth = make_demo_corpus(corpus)
    console.print(f"demo corpus: {len(truth.files)} files in [bold]{corpus}[/bold]")
    if not run:
        return
    clean(inputs=[str(corpus)], out=str(workdir / "dataset"), config=None, set_=None, runner=runner,
          cpus=cpus, dry_run=False, as_json=False)
    console.print(f"dataset: [bold]{workdir / 'dataset'}[/bold]  (try: audiomill inspect {workdir / 'dataset'})")


def _register_ops() -> None:
    from audiomill.orchestration.cli_ops import cluster_app, jobs_app, plan_command

    app.add_typer(cluster_app, name="cluster")
    app.add_typer(jobs_app, name="jobs")
    app.command("plan")(plan_command)


_register_ops()


def _summary(root: str) -> dict[str, Any]:
    from audiomill.orchestration.summary import dataset_summary

    return dataset_summary(root)


def _print_plan(result: dict[str, Any]) -> None:
    console.print(f"{result['sources']} sources in {result['parts']} parts; {result['parts_to_run']} to run; "
                  f"{result['skipped_by_filter']} files skipped by filters")


def _print_summary(summary: dict[str, Any]) -> None:
    counts = summary["counts"]
    table = Table(title=f"dataset {summary['root']}", show_header=False)
    for label, value in (
        ("inputs", counts["inputs"]), ("kept sources", counts["kept_sources"]),
        ("rejected sources", counts["rejected_sources"]), ("segments", counts["segments"]),
        ("shards", counts["shards"]), ("hours in", f"{summary['hours_in']:.3f}"),
        ("hours out", f"{summary['hours_out']:.3f}"),
        ("accounting", "ok" if summary["accounting_ok"] else "BROKEN"),
        ("x realtime", summary["stages"]["job"]["x_realtime"]),
    ):
        table.add_row(label, str(value))
    console.print(table)
    histogram = Table("segment duration (s)", "segments", title="durations")
    for bucket in summary["duration_histogram"]:
        histogram.add_row(bucket["range_s"], str(bucket["segments"]))
    console.print(histogram)
    if summary["rejects"]:
        rejects = Table("stage", "reason", "rows", title="top reject reasons (a row is a source or a segment)")
        for row in summary["rejects"][:10]:
            rejects.add_row(row["stage"], row["reason"], str(row["count"]))
        console.print(rejects)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr (Ray workers and the raylet write straight to it)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _shutdown_ray() -> None:
    """Stop an in-process Ray so its background threads print nothing after the result."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _quiet_ray_logs() -> None:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for name in ("ray", "ray.data", "ray._private"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"audiomill {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if verbose:  # our own debug lines only: HTTP client debug logs print signed URLs
        logging.getLogger("audiomill").setLevel(logging.DEBUG)


def main() -> None:
    """Console-script entry point; typer usage errors exit 2, job failures 1."""
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        err_console.print("interrupted; rerun the same command to resume")
        sys.exit(130)
