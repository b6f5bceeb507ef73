"""A real local Ray cluster for users without one: ``ray start`` head (+ workers) on 127.0.0.1.

Each cluster gets its own Ray temp dir, so ``down`` stops exactly its processes (found by that
dir in their command lines) and never another Ray on the machine. State lives in a small JSON
file so ``status``, ``jobs`` and ``clean --address`` find the dashboard address.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

DEFAULT_STATE = Path(os.environ.get("AUDIOMILL_HOME", Path.home() / ".audiomill")) / "cluster.json"


class ClusterError(RuntimeError):
    """The cluster could not be started, reached or stopped."""


@dataclass(frozen=True)
class ClusterState:
    gcs_address: str  # host:port for ray.init / worker nodes
    dashboard_url: str  # http://host:port for the Jobs API
    temp_dir: str
    head_cpus: int | None
    workers: int

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> ClusterState:
        if not path.is_file():
            raise ClusterError(f"no cluster state at {path}; start one with `audiomill cluster up`")
        return cls(**json.loads(path.read_text()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_binary() -> str:
    candidate = Path(sys.executable).with_name("ray")
    return str(candidate) if candidate.exists() else (shutil.which("ray") or "ray")


def _node_ports() -> list[str]:
    """Free ports for a node's agents, so the cluster coexists with other Rays on the machine."""
    ports = []
    for flag in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                 "--runtime-env-agent-port", "--metrics-export-port", "--ray-client-server-port"):
        ports += [flag, str(free_port())]
    return ports


def cluster_up(state_path: Path = DEFAULT_STATE, port: int | None = None, dashboard_port: int | None = None,
               cpus: int | None = None, workers: int = 0, worker_cpus: int = 1,
               timeout_s: float = 90.0) -> ClusterState:
    """Start a head (and ``workers`` worker nodes) bound to 127.0.0.1; wait for the Jobs API."""
    if workers:  # Ray 2.60 refuses worker nodes with a loopback node IP (see ray_session docs)
        raise ClusterError("worker nodes cannot join a loopback-only head with Ray 2.60; give the head "
                           "more CPUs instead (--cpus N)")
    port = port or free_port()
    dashboard_port = dashboard_port or free_port()
    temp_dir = f"/tmp/audiomill-ray-{port}"  # short: Ray's unix socket paths must stay < 108 chars
    head = [_ray_binary(), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(dashboard_port), "--temp-dir", temp_dir, "--disable-usage-stats",
            *_node_ports()]
    if cpus:
        head += ["--num-cpus", str(cpus)]
    _run_ray(head)
    state = ClusterState(f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard_port}", temp_dir, cpus, workers)
    for _ in range(workers):
        _run_ray([_ray_binary(), "start", "--address", state.gcs_address, "--node-ip-address", "127.0.0.1",
                  "--num-cpus", str(worker_cpus), "--temp-dir", temp_dir, "--disable-usage-stats",
                  *[p for p in _node_ports() if p != "--ray-client-server-port"][:8]])
    _wait_for_dashboard(state.dashboard_url, timeout_s)
    state.save(state_path)
    return state


def _run_ray(command: list[str]) -> None:
    # Jobs run `python -m audiomill` through the raylet's PATH: put this interpreter's bin dir
    # first, so a cluster started from a virtualenv runs jobs in that virtualenv.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    # "0" keeps the node IP 127.0.0.1, so GCS, raylet, agents, client server bind loopback only
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PATH=path, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    if result.returncode != 0:
        raise ClusterError(f"`{' '.join(command[:3])}` failed: {result.stderr.strip()[-800:]}")


def auth_headers() -> dict[str, str]:
    """Ray's token auth (on by default): the token ``ray start`` wrote, as Ray's own SDK sends it."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if not token and path.is_file():
        token = path.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _get_json(url: str, timeout_s: float) -> dict:
    request = urllib.request.Request(url, headers=auth_headers())
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.loads(response.read())


def _wait_for_dashboard(url: str, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            _get_json(f"{url}/api/version", 2)
            return
        except (OSError, ValueError):
            time.sleep(0.5)
    raise ClusterError(f"Ray dashboard at {url} did not answer within {timeout_s:.0f} s")


def cluster_processes(temp_dir: str, gcs_address: str | None = None) -> list[psutil.Process]:
    """Processes of the cluster whose Ray temp dir is ``temp_dir`` (or that name its GCS address:
    the Ray client server and some agents carry only that on their command line)."""
    marks = [temp_dir] + ([gcs_address] if gcs_address else [])
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if any(mark in cmdline for mark in marks) and proc.pid != os.getpid():
            found.append(proc)
    return found


@dataclass(frozen=True)
class DownReport:
    stopped: int
    still_alive: list[str]  # "pid name" of processes that outlived the grace period


def cluster_down(state_path: Path = DEFAULT_STATE, grace_s: float = 10.0) -> DownReport:
    """Stop the cluster's processes (SIGTERM, then SIGKILL), waiting until they are gone; returns
    how many were stopped and which, if any, are still alive after ``grace_s``."""
    state = ClusterState.load(state_path)
    seen: set[int] = set()
    deadline = time.time() + grace_s
    while True:
        processes = cluster_processes(state.temp_dir, state.gcs_address)
        if not processes or time.time() > deadline:
            break
        seen.update(p.pid for p in processes)
        for proc in processes:
            _signal(proc, signal.SIGTERM)
        _, alive = psutil.wait_procs(processes, timeout=min(3.0, max(0.1, deadline - time.time())))
        for proc in alive:
            _signal(proc, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=2.0)
    still = [f"{p.pid} {_name(p)}" for p in cluster_processes(state.temp_dir, state.gcs_address)]
    state_path.unlink(missing_ok=True)
    return DownReport(stopped=len(seen), still_alive=still)


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "?"


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


def cluster_status(state_path: Path = DEFAULT_STATE) -> dict:
    """Address, dashboard health and node resources of the recorded cluster."""
    state = ClusterState.load(state_path)
    status = asdict(state) | {"processes": len(cluster_processes(state.temp_dir))}
    try:
        nodes = _get_json(f"{state.dashboard_url}/nodes?view=summary", 5)["data"]["summary"]
        status["nodes"] = [{"node_id": n["raylet"]["nodeId"][:12], "state": n["raylet"]["state"],
                            "cpus": n["raylet"].get("resourcesTotal", {}).get("CPU")} for n in nodes]
        status["reachable"] = True
    except (OSError, KeyError, ValueError):
        status["reachable"] = False
    return status
