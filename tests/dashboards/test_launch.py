"""Starting the dashboard: loopback by default, headless without usage statistics, usage errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from audiomill.dashboards import launch
from audiomill.orchestration.cli import app


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
    assert remote.exit_code == 2 and "--allow-remote" in remote.output
    missing = runner.invoke(app, ["dashboard", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a finished dataset" in missing.output
    assert "Example: audiomill dashboard" in runner.invoke(app, ["dashboard", "--help"]).output
