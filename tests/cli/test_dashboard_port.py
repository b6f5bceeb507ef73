"""A dashboard on a busy port fails with exit 2 and never prints a URL it cannot serve."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from audiomill.cli.app import app


def test_a_busy_port_is_a_usage_error_without_a_url(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["dashboard", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert f"port {port}" in said and "in use" in said and "http://" not in said
