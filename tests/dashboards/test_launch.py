"""Starting the dashboard: loopback by default, headless without usage statistics, usage errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from audiomill.dashboards import launch
from audiomill.cli.app import app


def test_loopback_detection():
    assert all(launch.is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not any(launch.is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "example.com"))


def test_command_is_headless_without_telemetry(tmp_path):
    command = launch.streamlit_command(str(tmp_path), 8765, "127.0.0.1", ["/other"])
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("app.py")
    for option in ("--server.headless=true", "--browser.gatherUsageStats=false", "--server.address=127.0.0.1",
                   "--server.port=8765"):
        assert option in command
    assert command[command.index("--"):] == ["--", "--dataset", str(tmp_path), "--compare", "/other"]


def test_start_refuses_remote_bind_and_missing_datasets(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({}))
    with pytest.raises(launch.DashboardError, match="--allow-remote"):
        launch.start_dashboard(str(tmp_path), 8765, host="0.0.0.0")
    with pytest.raises(launch.DashboardError, match="not a finished dataset"):
        launch.start_dashboard(str(tmp_path / "missing"), 8765)
    with pytest.raises(launch.DashboardError, match="not a finished dataset"):
        launch.start_dashboard(str(tmp_path), 8765, compare=[str(tmp_path / "missing")])


def test_cli_usage_errors_exit_2(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({}))
    runner = CliRunner()
    remote = runner.invoke(app, ["dashboard", str(tmp_path), "--host", "0.0.0.0"])
    assert remote.exit_code == 2 and "--allow-remote" in " ".join(remote.output.split())
    missing = runner.invoke(app, ["dashboard", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a finished dataset" in " ".join(missing.output.split())
    assert "Example: audiomill dashboard" in runner.invoke(app, ["dashboard", "--help"]).output


@pytest.mark.slow
def test_cli_serves_and_stops_streamlit_with_it(clean_dataset):
    """`audiomill dashboard` serves on 127.0.0.1; SIGTERM to the CLI takes Streamlit down too."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    port = launch.free_port()
    cli = subprocess.Popen([sys.executable, "-m", "audiomill", "dashboard", str(clean_dataset), "--port", str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        launch.wait_until_ready(url, cli, timeout_s=90)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read(2000).lower()
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(30) == 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                opener.open(f"{url}/_stcore/health", timeout=1).close()
            except OSError:
                break
            time.sleep(0.2)
        else:
            pytest.fail("streamlit still serving after the CLI was stopped")
        assert f"at {url}" in " ".join(cli.stdout.read().split())  # Rich wraps long lines
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
