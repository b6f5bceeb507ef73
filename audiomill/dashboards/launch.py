"""Start the Streamlit app as a subprocess: headless, no usage statistics, loopback by default.

The dashboard has no login, so binding anything but a loopback address needs ``allow_remote``.
The dataset roots travel as arguments after ``--`` (Streamlit hands them to the script); S3
credentials stay in the environment the subprocess inherits and are never put on a command line.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from audiomill import layout, storage

APP_PATH = Path(__file__).with_name("app.py")
DEFAULT_PORT = 8501
LOOPBACK_NAMES = {"localhost"}


class DashboardError(ValueError):
    """Bad dashboard arguments (unsafe host, missing dataset), reported as a usage error."""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback address unless the user asked for it explicitly."""
    if not is_loopback(host) and not allow_remote:
        raise DashboardError(f"refusing to bind {host}: the dashboard has no login; "
                             "pass --allow-remote to serve beyond this machine")


def check_port_free(host: str, port: int) -> None:
    """Fail before starting (and before printing a URL) when something already listens there."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as err:
            raise DashboardError(f"port {port} on {host} is in use ({err.strerror}); pick another with "
                                 "--port, or --port 0 for any free one") from err


def check_dataset(root: str) -> None:
    """Fail early, naming the root (redacted), when it is not a finished dataset."""
    if not storage.exists(storage.join(root, layout.MANIFEST_FILE)):
        raise DashboardError(f"{storage.redact(root)} is not a finished dataset (no {layout.MANIFEST_FILE})")


def streamlit_command(root: str, port: int, host: str, compare: list[str]) -> list[str]:
    """The ``python -m streamlit run`` command line for the app on ``host:port``."""
    options = {
        "server.port": str(port), "server.address": host, "server.headless": "true",
        "browser.gatherUsageStats": "false", "server.fileWatcherType": "none", "server.runOnSave": "false",
        "global.developmentMode": "false", "client.toolbarMode": "minimal",
        "server.showEmailPrompt": "false", "client.showErrorDetails": "stacktrace",
    }
    args = [sys.executable, "-m", "streamlit", "run", str(APP_PATH)]
    args += [f"--{name}={value}" for name, value in options.items()]
    args += ["--", "--dataset", root]
    for other in compare:
        args += ["--compare", other]
    return args


def start_dashboard(root: str, port: int = DEFAULT_PORT, host: str = "127.0.0.1",
                    compare: list[str] | None = None, allow_remote: bool = False,
                    quiet: bool = False) -> subprocess.Popen:
    """Start Streamlit serving the dashboard for ``root``; returns the running process."""
    check_bind(host, allow_remote)
    if not 0 < port < 65536:
        raise DashboardError(f"port must be 1-65535, got {port}")
    compare = list(compare or [])
    for dataset in [root, *compare]:
        check_dataset(dataset)
    env = os.environ | {"STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "STREAMLIT_SERVER_HEADLESS": "true"}
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(streamlit_command(root, port, host, compare), env=env,
                            stdout=output, stderr=output, start_new_session=True)


def wait_until_ready(url: str, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Poll Streamlit's health endpoint until it answers "ok" (raises if the process dies)."""
    deadline = time.monotonic() + timeout_s
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode} before serving")
        with contextlib.suppress(OSError, urllib.error.URLError):
            with opener.open(f"{url.rstrip('/')}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.2)
    raise TimeoutError(f"streamlit did not answer on {url} within {timeout_s:.0f} s")


def stop(*processes: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Stop processes started by ``start_dashboard`` (each its own session: children go too);
    all are signalled first, so they shut down in parallel."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout_s)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and ``--port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve(process: subprocess.Popen) -> int:
    """Wait for a started dashboard until it exits, or stop it on Ctrl-C, SIGTERM or SIGHUP (it
    runs in its own session, so it would outlive us otherwise). Its exit code, or 0 when stopped."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return process.wait()
    except KeyboardInterrupt:
        stop(process)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
