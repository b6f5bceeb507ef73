"""Long jobs show life without a terminal, and stop cleanly on SIGTERM/Ctrl-C with a resume hint."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from audiomill.schema import SAMPLE_RATE
from audiomill.testing.signals import write_audio

pytestmark = pytest.mark.slow


def _long_tones(directory: Path, files: int, seconds: float) -> Path:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = (0.1 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.3 * t) > 0)).astype(np.float32)
    for i in range(files):
        write_audio(directory / f"tone-{i}.flac", tone, SAMPLE_RATE)
    return directory


def _start(inputs: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "audiomill", "clean", str(inputs), "--out", str(out),
                             "--runner", "local", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_non_tty_runs_print_a_progress_line_per_part(tmp_path: Path):
    inputs = _long_tones(tmp_path / "in", files=3, seconds=2.0)
    done = subprocess.run([sys.executable, "-m", "audiomill", "clean", str(inputs), "--out", str(tmp_path / "ds"),
                           "--runner", "local", "--set", "ingest.part_size=1"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("audiomill: ")]
    assert lines[0] == "audiomill: planned 3 parts, 3 to run"
    assert lines[-1].startswith("audiomill: parts 3/3") and "x realtime" in lines[-1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_job_with_exit_130_and_a_resume_hint(tmp_path: Path, sig: signal.Signals):
    inputs = _long_tones(tmp_path / "in", files=2, seconds=600.0)
    process = _start(inputs, tmp_path / "ds")
    deadline = time.time() + 240
    seen = ""
    while time.time() < deadline and "planned" not in seen:  # wait until the job itself runs
        seen += process.stderr.readline()
    assert "planned" in seen, seen
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted — rerun the same command to resume" in stderr
    assert "SIGTERM received" not in stderr and "Traceback" not in stderr


def _import_cut_by_ctrl_c() -> None:
    """What onnxruntime's extension import raises when Ctrl-C lands during its initialisation."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as err:
        raise ImportError("initialization failed") from err


def test_an_import_cut_short_by_ctrl_c_counts_as_an_interrupt_not_a_failure(capsys):
    import typer

    from audiomill.cli.console import caused_by_interrupt
    from audiomill.cli.dataset import _run_reporting_failure
    from audiomill.config import CleanConfig

    with pytest.raises(ImportError) as info:
        _import_cut_by_ctrl_c()
    assert caused_by_interrupt(info.value)
    assert not caused_by_interrupt(ImportError("no module named onnx"))
    with pytest.raises(typer.Exit) as stopped:
        _run_reporting_failure(lambda progress: _import_cut_by_ctrl_c(), CleanConfig(inputs=["in"], output="out"),
                               as_json=True)
    assert stopped.value.exit_code == 130
    assert "interrupted — rerun the same command to resume" in capsys.readouterr().err
