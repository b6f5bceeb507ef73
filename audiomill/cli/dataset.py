"""Dataset commands: clean, curate, compact, crawl, inspect, dashboard, demo. Each parses, builds a config,
calls a job function in ``audiomill.jobs`` and renders the result; ``cli.app`` registers them."""

from __future__ import annotations

import json
import logging
import os
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from audiomill import storage
from audiomill.cli.console import (EXIT_FAILED, EXIT_INTERRUPTED, INTERRUPTED, caused_by_interrupt, console,
                                   err_console, failure, usage_error)
from audiomill.cli.render import print_plan, print_policy_report, print_summary, stdout_to_stderr
from audiomill.config import CleanConfig, ConfigError, load_config
from audiomill.jobs.lock import OutputLockedError
from audiomill.manifest import Manifest

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML or TOML job config.")]
CpusOption = Annotated[Optional[int], typer.Option(help="CPUs for the local Ray instance (default: all).")]


def build_config(inputs: list[str], out: str, config: Path | None, sets: list[str] | None,
                 runner: str | None, cpus: int | None) -> CleanConfig:
    overrides = list(sets or [])
    if runner:
        overrides.append(f"runner.kind={runner}")
    if cpus:
        overrides.append(f"runner.num_cpus={cpus}")
    return load_config(config, overrides, inputs=inputs or None, output=out or None)


def clean(
    inputs: Annotated[Optional[list[str]], typer.Argument(
        help="Audio files, directories, manifests (.jsonl/.csv/.parquet), .tar archives or s3:// "
             "prefixes (or `inputs:` in --config).")] = None,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", help="Output dataset: a directory or s3:// prefix (or `output:` in --config).")] = None,
    config: ConfigOption = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config value, e.g. --set vad.threshold=0.6 (repeatable).")] = None,
    runner: Annotated[Optional[str], typer.Option(help="auto (default: Ray with --address; else in "
                                                       "process for a job of one part, and for more "
                                                       "Ray with a GPU stage, else processes), ray, "
                                                       "local (in process), or processes (a pool of "
                                                       "worker processes, no Ray start: the fast path "
                                                       "on one machine).")] = None,
    cpus: CpusOption = None,
    gpus: Annotated[Optional[float], typer.Option(help="Run ASR on CUDA with this many GPUs per actor "
                                                       "(0.25 puts 4 actors on a card).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate config and list parts; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON instead of tables.")] = False,
    address: Annotated[Optional[str], typer.Option(
        "--address", help="Submit to a Ray cluster's Jobs API (http://HEAD:8265, or `auto` for the cluster "
                          "from `audiomill cluster up`) instead of running here.")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="With --address: print the job id and return.")] = False,
    policy: Annotated[Optional[str], typer.Option(
        "--policy", help="Filter policy YAML; `default` (the shipped one) unless set; `none` keeps every "
                         "segment.")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace a dataset made from other inputs at --out (it is deleted first).")] = False,
) -> None:
    """Decode, detect speech, cut segments and write WebDataset shards with index, rejects and manifest.

    Every segment gets quality metrics (q_* columns); a filter policy (--policy) rejects segments
    failing its rules, and a per-rule report of kept/rejected hours is printed at the end.
    Rerunning the same command resumes: finished parts are skipped.

    Example: audiomill clean ./raw s3://bucket/crawl-01 --out ./dataset --set vad.threshold=0.6
    """
    from audiomill.jobs.clean import plan_job, run_clean
    from audiomill.jobs.prepare import prepare_job

    try:
        gpu_sets = ["asr.device=cuda", f"asr.num_gpus={gpus}"] if gpus else []
        policy_sets = [f"policy={_policy_value(policy)}"] if policy else []
        cfg = build_config(inputs or [], out or "", config, [*(set_ or []), *gpu_sets, *policy_sets],
                           runner, cpus)
        prepared = prepare_job(cfg, overwrite)  # missing inputs/models/policy, bad columns, busy --out: usage
        if dry_run:
            plan = plan_job(prepared, write=False)
            result = {"parts": len(plan.parts), "parts_to_run": len(plan.todo), "sources": plan.sources,
                      "skipped_by_filter": plan.listing.skipped_by_filter,
                      "config": prepared.cfg.model_dump(mode="json")}
            console.print_json(json.dumps(result)) if as_json else print_plan(result)
            return
    except (ConfigError, FileNotFoundError, NotADirectoryError, ValueError) as err:
        raise usage_error(str(err)) from err
    if address:
        from audiomill.cli.remote import submit_and_follow

        submit_and_follow(prepared.cfg, address, detach, as_json)
        return
    manifest = _run_reporting_failure(lambda progress: run_clean(prepared, progress), prepared.cfg, as_json)
    if as_json:
        print(manifest.to_json())
        _emit_manifest_line(manifest)
    else:
        _print_result(prepared.cfg.output, manifest)


def _run_reporting_failure(job, cfg: CleanConfig, as_json: bool) -> Manifest:  # noqa: ANN001
    """Run ``job(progress)`` with the right progress display; any failure exits 1 with its cause."""
    from audiomill.cli.progress import LineJobProgress, RichJobProgress
    from audiomill.execution.ray_session import drop_driver_lines

    try:
        if as_json:
            with stdout_to_stderr():  # Ray and libraries print; stdout carries only the JSON
                return job(LineJobProgress())
        if not console.is_terminal:
            with drop_driver_lines():
                return job(LineJobProgress())
        with drop_driver_lines(), RichJobProgress(console) as progress:
            return job(progress)
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM (cli.app turns it into KeyboardInterrupt)
        raise _interrupted() from err
    except OutputLockedError as err:  # refused at start: another run writes this output
        raise usage_error(str(err)) from err
    except Exception as err:  # noqa: BLE001 - report any job failure as exit 1 with its message
        if caused_by_interrupt(err):
            raise _interrupted() from err
        trace = "".join(traceback.format_exception(err))
        logging.getLogger("audiomill").debug("job failed: %s", storage.mask_secrets(trace, *cfg.inputs, cfg.output))
        err_console.print(f"[red]job failed:[/red] {describe_failure(err, cfg)}")
        raise typer.Exit(EXIT_FAILED) from err


def _interrupted() -> typer.Exit:
    err_console.print(INTERRUPTED)
    return typer.Exit(EXIT_INTERRUPTED)


def describe_failure(err: BaseException, cfg: CleanConfig) -> str:
    """First line of a job failure: the innermost cause (through Ray's wrappers), secrets masked."""
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        inner = getattr(err, "cause", None) or err.__cause__
        if not isinstance(inner, BaseException):
            break
        err = inner
    text = storage.redact_error(err, *cfg.inputs, cfg.output)
    return text.splitlines()[0] if text else type(err).__name__


def _emit_manifest_line(manifest: Manifest) -> None:
    """Inside a submitted Ray job, also log the manifest on one marked line (``execution.submit``)."""
    from audiomill.execution.submit import MANIFEST_LINE_ENV, manifest_line

    if os.environ.get(MANIFEST_LINE_ENV):
        err_console.file.write(manifest_line(manifest) + "\n")
        err_console.file.flush()


def _print_result(root: str, manifest: Manifest) -> None:
    from audiomill.jobs.summary import dataset_summary

    print_summary(dataset_summary(root))
    if manifest.policy_report:
        print_policy_report(manifest.policy, manifest.policy_report)


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
    from audiomill.jobs.curate import CurateError, curate_dataset

    try:
        manifest = curate_dataset(dataset, policy, out).to_dict()
    except (ConfigError, FileNotFoundError) as err:
        raise usage_error(str(err)) from err
    except CurateError as err:
        raise failure(f"curate failed: {err}") from err
    if as_json:
        print(json.dumps({key: manifest[key] for key in ("policy", "policy_report", "counts", "hours_out",
                                                          "rejects_by_reason", "accounting")}, indent=2))
    else:
        print_policy_report(manifest["policy"], manifest["policy_report"])
        console.print(f"wrote [bold]{out or dataset}[/bold]: {manifest['counts']['segments']} segments, "
                      f"{manifest['hours_out']:.3f} h kept")


def compact(
    dataset: Annotated[str, typer.Argument(help="A dataset made by `audiomill clean` (dir or s3://).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Write the compacted dataset here (a new or empty "
                                                          "dir or s3:// prefix; DATASET is never modified).")],
    target_bytes: Annotated[int, typer.Option(help="A pack closes once it reaches this many bytes.")] = 256 * 1024**2,
    max_samples: Annotated[int, typer.Option(help="A pack closes at this many segments.")] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the shard counts and sizes as JSON.")] = False,
) -> None:
    """Repack a dataset's small shards into shards of about --target-bytes, as a new dataset.

    Shards never span parts (a part is the unit of resume), so corpora of short files or high
    reject rates end as many small tars. Members are copied byte for byte in index order; the new
    index points at the packs, held tars are hard-linked, dedup/token/label tables are copied.
    Keep cleaning or curating DATASET itself and compact again for a new release.

    Example: audiomill compact ./dataset --out ./release --target-bytes 268435456
    """
    from audiomill.jobs.compact import CompactError, CompactOptions, compact_dataset

    try:
        options = CompactOptions(target_bytes=target_bytes, max_samples=max_samples)
        manifest = compact_dataset(dataset, out, options, progress=err_console.print)
    except (ValueError, FileNotFoundError) as err:
        raise usage_error(str(err)) from err
    except (CompactError, OutputLockedError) as err:
        raise failure(f"compact failed: {err}") from err
    sizes = sorted(s.bytes for s in manifest.shards)
    summary = {"shards_before": manifest.extra["compacted"]["source_shards"], "shards_after": len(sizes),
               "median_bytes": sizes[len(sizes) // 2] if sizes else 0, "total_bytes": sum(sizes),
               "segments": manifest.counts.segments}
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        console.print(f"wrote [bold]{out}[/bold]: {summary['shards_before']} shards -> {summary['shards_after']} "
                      f"(median {summary['median_bytes'] / 1024**2:.1f} MiB), {summary['segments']} segments")


def _policy_value(policy: str) -> str:
    """A --policy argument as a ``--set policy=`` value (YAML): `none` disables filtering."""
    return "null" if policy.strip().lower() == "none" else json.dumps(policy)


def crawl(
    urls_file: Annotated[str, typer.Argument(help="URL list: text (one URL a line, # comments) or .jsonl "
                                                  "(a url column; license, source... become metadata).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Output dataset: a directory or s3:// prefix.")],
    raw: Annotated[Optional[str], typer.Option(
        "--raw", help="Where fetched files are stored (dir or s3://); default OUT/_raw.")] = None,
    config: ConfigOption = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config value, e.g. --set crawl.per_host_rate=0.5 (repeatable).")] = None,
    runner: Annotated[Optional[str], typer.Option(help="auto (default), ray, local or processes, for the clean job.")] = None,
    cpus: CpusOption = None,
    allow_any_domain: Annotated[bool, typer.Option(
        "--allow-any-domain", help="Fetch from any public host instead of crawl.allowed_domains.")] = False,
    fetch_only: Annotated[bool, typer.Option(
        "--fetch-only", help="Fetch and write OUT/_crawl/manifest.jsonl; don't run clean.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON, no progress.")] = False,
    address: Annotated[Optional[str], typer.Option(
        "--address", help="Submit the crawl to a Ray cluster's Jobs API (http://HEAD:8265, or `auto`): URLs "
                          "are fetched by Ray tasks across the cluster, politeness held per host by one "
                          "actor; --out and --raw must be storage the cluster reaches (s3:// or shared).")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="With --address: print the job id and return.")] = False,
) -> None:
    """Fetch audio from HTTP(S) URLs, or from pages listing audio links, then clean it into a dataset.

    Only hosts in crawl.allowed_domains are fetched, politely: robots.txt, per-host rate limits.

    Licenses come from the list, HTTP headers or page metadata; failed URLs become rejects.

    Rerunning the same command skips URLs already fetched and resumes the clean job.

    Example: audiomill crawl urls.txt --out ./dataset --set crawl.allowed_domains=example.org
    """
    from audiomill.cli.progress import RichCrawlProgress
    from audiomill.jobs.crawl import check_crawl_config, clean_fetched, fetch_urls

    try:
        overrides = list(set_ or []) + (["crawl.allow_any_domain=true"] if allow_any_domain else [])
        cfg = build_config([], out, config, overrides, runner, cpus)
        check_crawl_config(cfg, urls_file)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        raise usage_error(str(err)) from err
    if address:
        from audiomill.cli.remote import submit_and_follow

        local = storage.local_path(urls_file)  # a local list ships with the job; s3:// is read there
        listed = ("urls.jsonl" if urls_file.lower().endswith(".jsonl") else "urls.txt") if local else urls_file
        cfg = cfg.model_copy(update={"crawl": cfg.crawl.model_copy(update={"fetch_on": "ray"})})
        args = (listed, "--out", storage.absolute(cfg.output), *(("--raw", storage.absolute(raw)) if raw else ()),
                *(("--fetch-only",) if fetch_only else ()))
        submit_and_follow(cfg, address, detach, as_json, "crawl", {listed: local} if local else None, args)
        return
    quiet = as_json or not console.is_terminal
    try:
        if quiet:
            report = fetch_urls(cfg, urls_file, raw)
        else:
            with RichCrawlProgress(console) as crawl_progress:
                report = fetch_urls(cfg, urls_file, raw, crawl_progress)
    except Exception as err:  # noqa: BLE001 - report any crawl failure as exit 1 with its message
        logging.getLogger("audiomill").debug("crawl failed", exc_info=True)
        raise failure(f"crawl failed: {describe_failure(err, cfg)}") from err
    dataset = None if fetch_only else _run_reporting_failure(lambda progress: clean_fetched(cfg, progress),
                                                             cfg, as_json)
    if as_json:
        print(json.dumps({"crawl": report, "dataset": dataset.to_dict() if dataset else None}, indent=2))
        if dataset is not None:
            _emit_manifest_line(dataset)
        return
    console.print(f"crawl: {report['fetched']} fetched, {report['cached']} already fetched, "
                  f"{report['failed']} failed {report['failed_by_reason'] or ''}; manifest {report['manifest']}")
    if dataset is not None:
        _print_result(cfg.output, dataset)


def inspect(
    dataset: Annotated[str, typer.Argument(help="A dataset made by `audiomill clean` (dir or s3://).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Summarize a dataset: counts, hours, segment duration histogram, top reject reasons.

    Example: audiomill inspect ./dataset
    """
    from audiomill.jobs.summary import dataset_summary

    from audiomill.cli.provenance import print_licensing
    from audiomill.jobs.provenance import licensing_report

    try:
        summary = dataset_summary(dataset)
    except FileNotFoundError as err:
        raise usage_error(str(err)) from err
    summary["licensing"] = licensing_report(dataset).as_dict()
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
        print_licensing(summary["licensing"])


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
    from audiomill.dashboards.launch import (DashboardError, check_bind, check_port_free, free_port, serve,
                                             start_dashboard)

    try:
        check_bind(host, allow_remote)
        port = port or free_port(host)
        check_port_free(host, port)
        process = start_dashboard(dataset, port, host, compare or [], allow_remote=allow_remote)
    except (DashboardError, FileNotFoundError, OSError) as err:
        raise usage_error(storage.redact(str(err))) from err
    console.print(f"dashboard for {storage.redact(dataset)} at http://{host}:{port} (Ctrl-C stops)")
    raise typer.Exit(serve(process))


def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where the corpus and dataset go.")] = Path("demo"),
    run: Annotated[bool, typer.Option("--run/--no-run", help="Also run `clean` on the corpus.")] = True,
    runner: Annotated[str, typer.Option(help="ray or local.")] = "ray",
    cpus: CpusOption = None,
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
