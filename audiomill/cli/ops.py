"""CLI for operating clusters and jobs: ``audiomill cluster ...``, ``audiomill jobs ...``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from audiomill.cli.console import EXIT_FAILED, EXIT_USAGE, console, err_console, usage_error
from audiomill.cli.remote import resolve_address
from audiomill.execution import cluster as cluster_ops
from audiomill.execution import submit as job_ops

cluster_app = typer.Typer(no_args_is_help=True, help="Start, stop and inspect a local Ray cluster on 127.0.0.1.")
jobs_app = typer.Typer(no_args_is_help=True, help="List, follow and stop jobs on a Ray cluster (Ray Jobs API).")

StateOption = Annotated[Path, typer.Option("--state", help="Cluster state file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]
AddressOption = Annotated[Optional[str], typer.Option(
    "--address", help="Ray dashboard address, e.g. http://HEAD:8265 (default: RAY_ADDRESS, then the "
                      "cluster started by `audiomill cluster up`).")]


@cluster_app.command("up")
def cluster_up(
    cpus: Annotated[Optional[int], typer.Option(help="CPUs of the head node (default: all).")] = None,
    workers: Annotated[int, typer.Option(help="Extra worker nodes to start on this machine.")] = 0,
    worker_cpus: Annotated[int, typer.Option(help="CPUs per worker node.")] = 1,
    port: Annotated[Optional[int], typer.Option(help="GCS port (default: a free one).")] = None,
    dashboard_port: Annotated[Optional[int], typer.Option(help="Dashboard/Jobs API port (default: free).")] = None,
    state: StateOption = cluster_ops.DEFAULT_STATE,
) -> None:
    """Start a Ray head (and worker nodes) bound to 127.0.0.1 and record its address.

    Example: audiomill cluster up --cpus 2 && audiomill clean ./raw --out ./ds --address auto
    """
    try:
        info = cluster_ops.cluster_up(state, port, dashboard_port, cpus, workers, worker_cpus)
    except cluster_ops.ClusterError as err:
        err_console.print(f"[red]cluster up failed:[/red] {err}")
        raise typer.Exit(EXIT_FAILED) from err
    console.print(f"cluster up: GCS {info.gcs_address}, Jobs API {info.dashboard_url}")


def _recorded_cluster(operation, state: Path):  # noqa: ANN001, ANN202
    """Run ``operation(state)``; no recorded cluster is a usage error (exit 2)."""
    try:
        return operation(state)
    except cluster_ops.ClusterError as err:
        err_console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(EXIT_USAGE) from err


@cluster_app.command("down")
def cluster_down(state: StateOption = cluster_ops.DEFAULT_STATE) -> None:
    """Stop the cluster started by `cluster up` (only its own processes).

    Example: audiomill cluster down
    """
    report = _recorded_cluster(cluster_ops.cluster_down, state)
    console.print(f"cluster down: stopped {report.stopped} processes")
    if report.still_alive:
        err_console.print(f"[yellow]still alive:[/yellow] {', '.join(report.still_alive)}")
        raise typer.Exit(EXIT_FAILED)


@cluster_app.command("status")
def cluster_status(state: StateOption = cluster_ops.DEFAULT_STATE,
                   as_json: JsonOption = False) -> None:
    """Show the recorded cluster's address, health and nodes.

    Example: audiomill cluster status
    """
    status = _recorded_cluster(cluster_ops.cluster_status, state)
    if as_json:
        print(json.dumps(status, indent=2))
        return
    console.print(f"Jobs API {status['dashboard_url']}  GCS {status['gcs_address']}  "
                  f"reachable: {status['reachable']}  processes: {status['processes']}")
    for node in status.get("nodes", []):
        console.print(f"  node {node['node_id']} {node['state']} cpus={node['cpus']}")


@jobs_app.command("list")
def jobs_list(address: AddressOption = None, as_json: JsonOption = False) -> None:
    """List jobs on the cluster.

    Example: audiomill jobs list --address http://127.0.0.1:8265
    """
    rows = job_ops.list_jobs(resolve_address(address))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("job", "status", "entrypoint")
    for row in rows:
        table.add_row(row["job_id"], row["status"], row["entrypoint"][:80])
    console.print(table)


@jobs_app.command("status")
def jobs_status(job_id: str, address: AddressOption = None) -> None:
    """Show one job's status.

    Example: audiomill jobs status raysubmit_XYZ
    """
    print(json.dumps(job_ops.job_status(resolve_address(address), job_id), indent=2))


@jobs_app.command("logs")
def jobs_logs(job_id: str, address: AddressOption = None,
              follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream until the job ends.")] = False
              ) -> None:
    """Print a job's logs (optionally following them).

    Example: audiomill jobs logs raysubmit_XYZ --follow
    """
    url = resolve_address(address)
    if follow:
        status = job_ops.follow(url, job_id, lambda text: sys.stdout.write(text))
        raise typer.Exit(0 if status == "SUCCEEDED" else EXIT_FAILED)
    sys.stdout.write(job_ops.job_logs(url, job_id))


@jobs_app.command("stop")
def jobs_stop(job_id: str, address: AddressOption = None) -> None:
    """Ask the cluster to stop a job.

    Example: audiomill jobs stop raysubmit_XYZ
    """
    stopped = job_ops.stop_job(resolve_address(address), job_id)
    console.print(f"{job_id}: {'stop requested' if stopped else 'already finished'}")


def plan_command(
    hours: Annotated[float, typer.Option("--hours", help="Raw audio hours to plan for, e.g. 100000000.")],
    from_: Annotated[Optional[list[str]], typer.Option(
        "--from", help="Datasets (or manifest.json files) cleaned on your hardware; their measured "
                       "stage throughputs drive the plan (repeatable).")] = None,
    cluster_spec: Annotated[Optional[str], typer.Option(
        "--cluster-spec", help="YAML with `cpus: N` and `gpus: N` (default: this machine).")] = None,
    round_from: Annotated[Optional[str], typer.Option(
        "--round-from", help="Price one self-labeling round instead, from the rounds measured on this "
                             "dataset (`audiomill round run`): --hours of audio annotated, --budget-hours "
                             "of it re-synthesized and verified.")] = None,
    budget_hours: Annotated[float, typer.Option(
        "--budget-hours", help="With --round-from: hours re-synthesized per round.")] = 1000.0,
    as_json: JsonOption = False,
) -> None:
    """Estimate core-hours, GPU-hours, storage and wall time per stage, and name the bottleneck;
    with --round-from, the same per phase of one self-labeling round at a re-synthesis budget.

    Example: audiomill plan --hours 100000000 --from ./sample-dataset --cluster-spec cluster.yaml
    Example: audiomill plan --hours 100000000 --budget-hours 10000 --round-from ./sample-dataset
    """
    from audiomill.execution.planner import ClusterSpec, load_manifest, plan

    if round_from is None and not from_:
        raise usage_error("give --from DATASET (a clean plan) or --round-from DATASET (a round's price)")
    try:
        spec = ClusterSpec.load(cluster_spec)
        if round_from is not None:
            from audiomill.execution.round_planner import measured_rounds, plan_round

            _print_round_plan(plan_round(hours, budget_hours, measured_rounds(round_from), spec), as_json)
            return
        result = plan(hours, [load_manifest(s) for s in from_ or []], spec)
    except (FileNotFoundError, ValueError) as err:
        err_console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(EXIT_USAGE) from err
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table("stage", "x realtime / worker", "core-hours", "GPU-hours", "wall hours (share)",
                  title=f"{hours:,.0f} h on {result['cluster']['cpus']} CPUs, {result['cluster']['gpus']} GPUs")
    for row in result["stages"]:
        mark = " <- bottleneck" if row["stage"] == result["bottleneck"] else ""
        table.add_row(row["stage"] + mark, f"{row['x_realtime_per_worker']:,.0f}", f"{row['core_hours']:,.0f}",
                      f"{row['gpu_hours']:,.0f}", f"{row['wall_hours_share']:,.1f}")
    console.print(table)
    console.print(f"wall time ~{result['wall_hours']:,.1f} h; kept ratio {result['kept_ratio']:.1%}; "
                  f"storage: raw {result['storage_tb']['raw']:,.1f} TB, shards {result['storage_tb']['shards']:,.1f} TB "
                  f"in ~{result['shard_count']:,.0f} tars (~{result['compacted_shard_count']:,} after `audiomill compact`) "
                  f"(based on {result['based_on']['audio_hours']:.2f} h measured)")


def _print_round_plan(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table("phase", "core-s per unit", "amount", "core-hours", "wall hours",
                  title=f"one round: {result['hours']:,.0f} h annotated, {result['budget_hours']:,.0f} h "
                        f"re-synthesized, on {result['cluster']['cpus']} CPUs")
    for row in result["phases"]:
        mark = " <- bottleneck" if row["phase"] == result["bottleneck"] else ""
        table.add_row(row["phase"] + mark, f"{row['core_s_per_unit']:,.1f} / {row['unit']}",
                      f"{row['amount']:,.0f}", f"{row['core_hours']:,.1f}", f"{row['wall_hours']:,.2f}")
    console.print(table)
    expected = result["expected"]
    console.print(f"wall time ~{result['wall_hours']:,.1f} h; expected {expected['accepted_clips']:,.0f} accepted "
                  f"labels ({expected['acceptance_rate']:.0%} of {expected['clips_per_hour']:,.0f} clips/h); "
                  f"based on rounds {result['based_on']['rounds']}")
